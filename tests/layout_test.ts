/** Table tests for the registry key layout (pure functions of `layout.ts`). */
import assert from "node:assert/strict";
import {
  formatStamp,
  heartbeatKey,
  hostPort,
  parseHeartbeatKey,
  parseJoinAddress,
  parseStamp,
} from "../src/registry/layout.ts";
import { isIpLiteral, nodeNameProblem } from "../src/util/validate.ts";

Deno.test("formatStamp: UTC YYYYmmddHHMMSS, zero-padded", () => {
  const cases: [string, string][] = [
    ["2014-05-16T09:27:31Z", "20140516092731"],
    ["2014-05-16T11:27:31+02:00", "20140516092731"], // always UTC
    ["2000-01-01T00:00:00.999Z", "20000101000000"], // milliseconds dropped
    ["2024-02-29T23:59:59Z", "20240229235959"],
    ["0999-12-31T23:59:59Z", "09991231235959"],
  ];
  for (const [iso, want] of cases) assert.equal(formatStamp(new Date(iso)), want, iso);
});

Deno.test("parseStamp: real UTC date-times only", () => {
  const good: [string, string][] = [
    ["20140516092731", "2014-05-16T09:27:31.000Z"],
    ["20240229000000", "2024-02-29T00:00:00.000Z"],
    ["19991231235959", "1999-12-31T23:59:59.000Z"],
  ];
  for (const [s, iso] of good) assert.equal(parseStamp(s)?.toISOString(), iso, s);
  const bad = [
    "20141316092731", // month 13
    "20140016092731", // month 0
    "20140532092731", // day 32
    "20140500092731", // day 0
    "20230229092731", // 29 Feb, not a leap year
    "20140431092731", // 31 April
    "20140516242731", // hour 24
    "20140516096031", // minute 60
    "20140516092760", // second 60
    "2014051609273",
    "201405160927311",
    "2014-05-16T09:27",
    " 20140516092731",
    "２０１４０５１６０９２７３１",
    "",
  ];
  for (const s of bad) assert.equal(parseStamp(s), undefined, JSON.stringify(s));
});

Deno.test("parseStamp(formatStamp(d)) round-trips to the second", () => {
  for (const ms of [0, 1_400_232_451_000, 1_709_251_199_000, Date.UTC(2038, 0, 19, 3, 14, 8)]) {
    const d = new Date(ms);
    assert.equal(parseStamp(formatStamp(d))?.getTime(), ms);
  }
});

Deno.test("heartbeat keys: the gem's layout, split on the first dash only", () => {
  const at = new Date(Date.UTC(2014, 4, 16, 9, 27, 31));
  assert.equal(heartbeatKey("servers", at, "server1"), "servers/20140516092731-server1");
  assert.equal(heartbeatKey("agents", at, "web-1-a"), "agents/20140516092731-web-1-a");
  const good: [string, string, string][] = [
    ["servers/20140516092731-server1", "servers", "server1"],
    ["agents/20140516092731-web-1-a", "agents", "web-1-a"],
    ["agents/20140516092731-a--b", "agents", "a--b"],
    ["servers/20140516092731-ip-10-0-0-1.ec2.internal", "servers", "ip-10-0-0-1.ec2.internal"],
    ["servers/20140516092731-A_b", "servers", "A_b"],
    ["servers/20140516092731-" + "n".repeat(128), "servers", "n".repeat(128)],
  ];
  for (const [key, dir, node] of good) {
    const p = parseHeartbeatKey(key);
    assert.ok(p, key);
    assert.equal(p.dir, dir, key);
    assert.equal(p.node, node, key);
    assert.equal(p.stamp.toISOString(), "2014-05-16T09:27:31.000Z", key);
  }
  const bad = [
    "servers/20140516092731",
    "servers/20140516092731-",
    "servers/20140516092731node",
    "servers/20140516092731--dash",
    "servers/20140516092731-.dot",
    "servers/20140516092731-a b",
    "servers/20140516092731-a/b",
    "servers/20140516092731-$(reboot)",
    "servers/20140516092731-ümlaut",
    "servers/20141316092731-month13",
    "servers/2014051609273-short",
    "servers/-20140516092731-x",
    "servers/20140516092731-" + "n".repeat(129),
    "slots/20140516092731-x",
    "Servers/20140516092731-x",
    "20140516092731-x",
    "servers//20140516092731-x",
    "",
  ];
  for (const key of bad) assert.equal(parseHeartbeatKey(key), undefined, JSON.stringify(key));
});

Deno.test("nodeNameProblem", () => {
  for (const ok of ["a", "web-1-a", "A_b.c", "0node", "n".repeat(128)]) {
    assert.equal(nodeNameProblem(ok), undefined, ok);
  }
  for (const bad of ["", "-a", ".a", "_a", "a b", "a/b", "ä", "n".repeat(129), "a\n"]) {
    assert.match(nodeNameProblem(bad) ?? "", /expected 1-128 characters/, JSON.stringify(bad));
  }
});

Deno.test("parseJoinAddress: unicast IPv4/IPv6 only, normalised", () => {
  const good: [string, string][] = [
    ["192.168.50.100", "192.168.50.100"],
    [" 10.0.0.1\n", "10.0.0.1"],
    ["127.0.0.1", "127.0.0.1"],
    ["1.2.3.4", "1.2.3.4"],
    ["2001:DB8::1", "2001:db8::1"],
    ["::1", "::1"],
    ["fd00::2", "fd00::2"],
    ["::ffff:10.0.0.1", "::ffff:10.0.0.1"],
  ];
  for (const [text, want] of good) assert.equal(parseJoinAddress(text), want, JSON.stringify(text));
  const bad = [
    "0.0.0.0",
    "::",
    "255.255.255.255",
    "255.1.2.3",
    "256.1.1.1",
    "01.2.3.4", // leading zero (octal in some parsers)
    "1.02.3.4",
    "1.2.3.004",
    "1.2.3",
    "1.2.3.4.5",
    "1.2.3.4:8301",
    "ff02::1", // multicast
    "FF05::2",
    "fe80::1%eth0", // zone
    "[2001:db8::1]",
    "2001:db8::g",
    "localhost",
    "example.com",
    "1.2.3.4; rm -rf /",
    "$(id)",
    "10.0.0.1 10.0.0.2",
    "",
    "   ",
    "١٢٧.٠.٠.١",
  ];
  for (const text of bad) assert.equal(parseJoinAddress(text), undefined, JSON.stringify(text));
});

Deno.test("isIpLiteral (bind addresses: 0.0.0.0 allowed) and hostPort", () => {
  for (const ok of ["0.0.0.0", "10.0.0.1", "::", "2001:db8::1"]) assert.ok(isIpLiteral(ok), ok);
  for (const bad of ["", "01.2.3.4", "fe80::1%eth0", "host", "1.2.3.4 "]) {
    assert.ok(!isIpLiteral(bad), JSON.stringify(bad));
  }
  assert.equal(hostPort("10.0.0.1", 8301), "10.0.0.1:8301");
  assert.equal(hostPort("2001:db8::1", 8301), "[2001:db8::1]:8301");
});
