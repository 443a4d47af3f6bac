/**
 * consul runs in a session of its own, so a terminal's Ctrl-C (sent to the foreground process
 * group) reaches only auto-consul, which forwards one signal. `sleep` stands in for consul:
 * the adapter does not care what it starts.
 */
import assert from "node:assert/strict";
import { spawnConsul } from "../src/consul/process.ts";

function statFields(pid: number): string[] {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  return stat.slice(stat.lastIndexOf(")") + 2).split(" "); // [state, ppid, pgrp, session, ...]
}

/**
 * Waits (bounded) until `pid` runs `comm`: the adapter starts the program through wrappers
 * (setsid, setpriv) that exec it in the same pid, and the session exists only once they ran.
 */
async function execed(pid: number, comm: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Deno.readTextFileSync(`/proc/${pid}/comm`).trim() !== comm) {
    if (Date.now() > deadline) throw new Error(`pid ${pid} did not exec ${comm} within 10 s`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

Deno.test({
  name: "the child is a session and process-group leader, apart from auto-consul's group",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const child = await spawnConsul({ bin: "sleep", args: ["30"] });
    try {
      await execed(child.pid, "sleep");
      const [, ppid, pgrp, session] = statFields(child.pid).map(Number);
      assert.equal(ppid, Deno.pid, "still our child (parent-death signal and wait work)");
      assert.equal(pgrp, child.pid, "its own process group");
      assert.equal(session, child.pid, "its own session");
      const [, , ourPgrp] = statFields(Deno.pid).map(Number);
      assert.notEqual(pgrp, ourPgrp);
    } finally {
      child.kill("SIGKILL");
      await child.status;
    }
    // And without a new session it stays in ours.
    const same = await spawnConsul({ bin: "sleep", args: ["30"], newSession: false });
    try {
      await execed(same.pid, "sleep");
      assert.equal(Number(statFields(same.pid)[2]), Number(statFields(Deno.pid)[2]));
    } finally {
      same.kill("SIGKILL");
      await same.status;
    }
  },
});
