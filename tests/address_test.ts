import assert from "node:assert/strict";
import { type ConsulAddress, parseConsulAddress } from "../src/consul/address.ts";

const good: [string, Omit<ConsulAddress, "hostPort">][] = [
  ["127.0.0.1:8500", {
    scheme: "http",
    host: "127.0.0.1",
    port: 8500,
    baseUrl: "http://127.0.0.1:8500",
  }],
  ["http://127.0.0.1:8500", {
    scheme: "http",
    host: "127.0.0.1",
    port: 8500,
    baseUrl: "http://127.0.0.1:8500",
  }],
  ["http://127.0.0.1:8500/", {
    scheme: "http",
    host: "127.0.0.1",
    port: 8500,
    baseUrl: "http://127.0.0.1:8500",
  }],
  ["https://consul.example.com:8501", {
    scheme: "https",
    host: "consul.example.com",
    port: 8501,
    baseUrl: "https://consul.example.com:8501",
  }],
  ["127.23.4.5", {
    scheme: "http",
    host: "127.23.4.5",
    port: 8500,
    baseUrl: "http://127.23.4.5:8500",
  }],
  ["localhost", {
    scheme: "http",
    host: "localhost",
    port: 8500,
    baseUrl: "http://localhost:8500",
  }],
  ["https://consul", {
    scheme: "https",
    host: "consul",
    port: 8501,
    baseUrl: "https://consul:8501",
  }],
  ["HTTP://LocalHost:1", {
    scheme: "http",
    host: "localhost",
    port: 1,
    baseUrl: "http://localhost:1",
  }],
  ["  10.0.0.1:65535\n", {
    scheme: "http",
    host: "10.0.0.1",
    port: 65535,
    baseUrl: "http://10.0.0.1:65535",
  }],
  ["[::1]:8500", { scheme: "http", host: "::1", port: 8500, baseUrl: "http://[::1]:8500" }],
  ["http://[fd00::1]", {
    scheme: "http",
    host: "fd00::1",
    port: 8500,
    baseUrl: "http://[fd00::1]:8500",
  }],
  ["::1", { scheme: "http", host: "::1", port: 8500, baseUrl: "http://[::1]:8500" }],
];

for (const [input, want] of good) {
  Deno.test(`parseConsulAddress accepts ${JSON.stringify(input)}`, () => {
    const got = parseConsulAddress(input);
    const { hostPort, ...rest } = got;
    assert.deepEqual(rest, want);
    assert.equal(`${got.scheme}://${hostPort}`, got.baseUrl);
  });
}

const bad: [string, RegExp][] = [
  ["", /empty/],
  ["   ", /empty/],
  ["unix:///var/run/consul.sock", /unix sockets are not supported/],
  ["ftp://127.0.0.1:8500", /unknown scheme "ftp"/],
  ["http://", /no host/],
  ["127.0.0.1:", /port "" is not a number/],
  ["127.0.0.1:0", /port "0"/],
  ["127.0.0.1:65536", /port "65536"/],
  ["127.0.0.1:85x0", /port "85x0"/],
  ["127.0.0.1:8500/v1", /only a host and port/],
  ["http://127.0.0.1:8500?x=1", /only a host and port/],
  ["http://user@127.0.0.1:8500", /only a host and port/],
  ["256.0.0.1:8500", /"256.0.0.1" is not a valid host/],
  ["bad_host:8500", /"bad_host" is not a valid host/],
  ["[::1:8500", /unclosed/],
  ["[::1]8500", /after '\]'/],
  ["[nothex]:8500", /not an IPv6 address/],
  ["1.2.3.4:8500:1", /"1.2.3.4:8500" is not a valid host/],
];

for (const [input, why] of bad) {
  Deno.test(`parseConsulAddress rejects ${JSON.stringify(input)}`, () => {
    assert.throws(() => parseConsulAddress(input), (err: unknown) => {
      assert.ok(err instanceof TypeError, `expected TypeError, got ${err}`);
      assert.match(err.message, why);
      assert.ok(
        err.message.includes(JSON.stringify(input)),
        `message names the value: ${err.message}`,
      );
      assert.ok(!err.message.includes("\n"), "one line");
      return true;
    });
  });
}
