import assert from "node:assert/strict";
import { serverWarnings } from "../src/cluster/server_warnings.ts";
import { runCli } from "./harness/cli.ts";

Deno.test("warnings for a server without a place or beyond -s", () => {
  const base = { node: "me", servers: 3 };
  const table: [string, Parameters<typeof serverWarnings>[0], RegExp[]][] = [
    ["a client: nothing", { ...base, mode: "agent", liveServers: ["a", "b", "c", "d"] }, []],
    ["a server with a place, 2 others", {
      ...base,
      mode: "server",
      place: { place: 0, epoch: 1 },
      liveServers: ["a", "b", "me"],
    }, []],
    ["set by hand: no place", { ...base, mode: "server" }, [/without a server place/]],
    ["beyond -s", {
      ...base,
      mode: "server",
      place: { place: 0, epoch: 1 },
      liveServers: ["a", "b", "c", "me", "a"],
    }, [/3 other servers are live already \(want -s 3\): this node makes 4 servers/]],
    ["both", { ...base, mode: "server", liveServers: ["a", "b", "c"] }, [
      /without a server place/,
      /beyond|makes 4 servers/,
    ]],
  ];
  for (const [name, input, want] of table) {
    const got = serverWarnings(input);
    assert.equal(got.length, want.length, `${name}: ${got.join(" / ")}`);
    want.forEach((re, i) => assert.match(got[i], re, name));
  }
});

Deno.test("set_server warns that the node will run as a server without a place", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const r = await runCli(["-d", `${dir}/d`, "-s", "3", "set_server"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /WARN .*runs as a server without a server place/);
    assert.equal(
      (await Deno.stat(`${dir}/d`)).mode! & 0o777,
      0o700,
      "the data dir is created 0700",
    );
    const a = await runCli(["-d", `${dir}/e`, "set_agent"]);
    assert.doesNotMatch(a.stderr, /WARN/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
