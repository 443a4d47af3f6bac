/**
 * The README's demo, run until the cluster formed (--until-formed, bounded by --duration): the
 * 5-node cluster forms and is cleaned up. No fixed run time: a loaded machine only makes it slower.
 */
import assert from "node:assert/strict";
import { REPO } from "../harness/proc.ts";

Deno.test("demo: 3 servers and 2 clients form a cluster, everything stopped afterwards", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      `${REPO}/scripts/demo.ts`,
      "--until-formed",
      "--duration",
      "180",
    ],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(300_000),
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, text + new TextDecoder().decode(out.stderr));
  assert.match(text, /cluster formed: 3 servers, 2 clients, one leader/);
  assert.equal(text.match(/^ {2}demo-\d +server .*voter=yes/gm)?.length! >= 3, true);
  assert.match(text, /demo: the cluster formed in [\d.]+s/);
  const net = /on 127\.(\d+)\.0\.1-5/.exec(text)![1];
  // No consul of the demo lives on.
  const ps = new TextDecoder().decode(
    (await new Deno.Command("ps", { args: ["-eo", "args"], stdout: "piped" }).output()).stdout,
  );
  assert.ok(!ps.includes(`-bind=127.${net}.0.`), "demo consul agents are gone");
});
