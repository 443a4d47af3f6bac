import assert from "node:assert/strict";
import { serverCountWarning, serverWarnings } from "../src/cluster/server_warnings.ts";
import { writeHeartbeat } from "../src/registry/heartbeats.ts";
import { FileRegistry } from "../src/registry/file.ts";
import { runCli } from "./harness/cli.ts";
import { quietLog } from "./registry/fixtures.ts";

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

Deno.test("serverCountWarning: an even -s tolerates no more failures than the odd one below", () => {
  assert.equal(serverCountWarning(1), undefined);
  assert.equal(serverCountWarning(3), undefined);
  assert.equal(serverCountWarning(5), undefined);
  assert.match(serverCountWarning(2)!, /^-s 2: .* than -s 1 \(quorum 2, 0 may fail\)/);
  assert.match(serverCountWarning(4)!, /^-s 4: .* than -s 3 \(quorum 3, 1 may fail\)/);
  assert.match(serverCountWarning(6)!, /\(quorum 4, 2 may fail\)/);
});

/** A folder registry where `nodes` heartbeat as live servers right now. */
async function registryWithServers(dir: string, nodes: string[]): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  const registry = new FileRegistry({ root: dir, log: quietLog() });
  for (const [i, node] of nodes.entries()) {
    await writeHeartbeat(
      registry,
      { node, address: `10.0.0.${i + 1}`, dirs: ["servers"], now: new Date() },
      quietLog(),
    );
  }
  registry.close();
  return `file://${dir}`;
}

Deno.test("set_server and set_mode beyond -s: a warning naming the live servers; -s 4: the even count", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const reg = await registryWithServers(`${dir}/reg`, ["srv-a", "srv-b", "srv-c"]);
    const common = ["-r", reg, "-n", "late-one", "-s", "3"];
    // set_server with 3 live servers already: this node makes 4
    const hand = await runCli([...common, "-d", `${dir}/d`, "set_server"]);
    assert.equal(hand.code, 0, hand.stderr);
    assert.match(hand.stderr, /WARN .*without a server place/);
    assert.match(
      hand.stderr,
      /WARN .*3 other servers are live already \(want -s 3\): this node makes 4 servers/,
    );
    // set_mode keeps the recorded server mode: the same warning, read from the registry
    const kept = await runCli([...common, "-d", `${dir}/d`, "set_mode"]);
    assert.equal(kept.code, 0, kept.stderr);
    assert.equal(kept.stdout.trim(), "server");
    assert.match(kept.stderr, /WARN .*this node makes 4 servers/);
    // within -s: no beyond warning (the place warning only)
    const within = await runCli([
      "-r",
      reg,
      "-n",
      "late-one",
      "-s",
      "5",
      "-d",
      `${dir}/e`,
      "set_server",
    ]);
    assert.equal(within.code, 0, within.stderr);
    assert.doesNotMatch(within.stderr, /other servers are live/);
    // a registry that cannot be read costs the warning, never the command
    const gone = await runCli([
      "-r",
      `file://${dir}/missing`,
      "-s",
      "3",
      "-d",
      `${dir}/f`,
      "set_server",
    ]);
    assert.equal(gone.code, 0, gone.stderr);
    assert.equal(await Deno.readTextFile(`${dir}/f/mode`).then((m) => m.trim()), "server");
    // set_mode -s 4 on a fresh data dir: decided from the registry, and the even count warned
    const even = await runCli(["-r", reg, "-n", "fresh", "-s", "4", "-d", `${dir}/g`, "set_mode"]);
    assert.equal(even.code, 0, even.stderr);
    assert.match(
      even.stderr,
      /WARN .*-s 4: an even number of servers tolerates no more failures than -s 3/,
    );
    const odd = await runCli(["-r", reg, "-n", "fresh2", "-s", "3", "-d", `${dir}/h`, "set_mode"]);
    assert.equal(odd.code, 0, odd.stderr);
    assert.doesNotMatch(odd.stderr, /even number/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
