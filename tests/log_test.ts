import assert from "node:assert/strict";
import { Logger, registerSecret } from "../src/log.ts";

const at = () => new Date("2026-01-02T03:04:05.000Z");

Deno.test("text lines name the component and the node; fields are key=value", () => {
  const lines: string[] = [];
  const log = new Logger({
    component: "heartbeat",
    node: "web-1",
    sink: (l) => lines.push(l),
    now: at,
  });
  log.info("heartbeat written", { role: "server", keys: "a b" });
  log.child("run/join").warn("joined", { addr: "10.0.0.1" });
  log.debug("not shown at info");
  assert.deepEqual(lines, [
    '2026-01-02T03:04:05.000Z INFO  [heartbeat web-1] heartbeat written role=server keys="a b"',
    "2026-01-02T03:04:05.000Z WARN  [run/join web-1] joined addr=10.0.0.1",
  ]);
});

Deno.test("--log-format json: one JSON object per line with command and node", () => {
  const lines: string[] = [];
  const log = new Logger({
    format: "json",
    level: "debug",
    component: "run",
    node: "n1",
    sink: (l) => lines.push(l),
    now: at,
  });
  log.debug("x", { n: 1 });
  log.error("boom");
  assert.deepEqual(lines.map((l) => JSON.parse(l)), [
    {
      ts: "2026-01-02T03:04:05.000Z",
      level: "debug",
      component: "run",
      node: "n1",
      msg: "x",
      n: 1,
    },
    { ts: "2026-01-02T03:04:05.000Z", level: "error", component: "run", node: "n1", msg: "boom" },
  ]);
});

Deno.test("registered secrets never reach a log line, in any format or field", () => {
  const secret = "b3f1c0de-aaaa-bbbb-cccc-0123456789ab";
  registerSecret(secret);
  const lines: string[] = [];
  for (const format of ["text", "json"] as const) {
    const log = new Logger({ format, sink: (l) => lines.push(l), now: at });
    log.warn(`token ${secret} refused`, { token: secret, nested: { t: secret } });
  }
  assert.equal(lines.length, 2);
  for (const l of lines) {
    assert.ok(!l.includes(secret), l);
    assert.match(l, /\[redacted\]/);
  }
});

Deno.test("control characters from registry keys reach text logs escaped, in the message and in fields", () => {
  const lines: string[] = [];
  const log = new Logger({ component: "run", sink: (l) => lines.push(l), now: at });
  log.warn("skipping registry key", { key: "servers/x\u001b[2J\u0007", n: "\u009b31m" });
  log.warn("odd \u202eevil\r\nline", { e: new Error("a\u0000b") });
  for (const l of lines) {
    const raw = [...l].find((c) => {
      const code = c.codePointAt(0)!;
      return code < 0x20 || (code >= 0x7f && code <= 0x9f) || code === 0x202e;
    });
    assert.equal(raw, undefined, `raw control character in ${JSON.stringify(l)}`);
  }
  assert.match(lines[0], /key="servers\/x\\u001b\[2J\\u0007" n="\\u009b31m"$/);
  assert.match(lines[1], /odd \\u202eevil\\u000d\\u000aline e="a\\u0000b"$/);
});
