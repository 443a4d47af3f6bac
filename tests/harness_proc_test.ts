/** The process library of tests, benchmarks and the demo (`tests/harness/proc.ts`). */
import assert from "node:assert/strict";
import { cleanEnv, LineTail, Proc, pumpLines } from "./harness/proc.ts";
import { waitFor } from "./harness/wait.ts";

function streamOf(...chunks: string[]): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  return new ReadableStream({
    start(c) {
      for (const chunk of chunks) c.enqueue(enc.encode(chunk));
      c.close();
    },
  });
}

Deno.test("pumpLines: lines split across chunks are joined, the last one comes without its newline", async () => {
  const lines: string[] = [];
  await pumpLines(streamOf("al", "pha\nbe", "ta\n\ngam", "ma"), (l) => lines.push(l));
  assert.deepEqual(lines, ["alpha", "beta", "", "gamma"]);
});

Deno.test("LineTail keeps the last lines", () => {
  const t = new LineTail(3);
  for (const l of ["a", "b", "c", "d", "e"]) t.push(l);
  assert.deepEqual(t.last(), ["c", "d", "e"]);
  assert.deepEqual(t.last(2), ["d", "e"]);
});

Deno.test("cleanEnv: none of the developer's auto-consul, consul or AWS settings but the tools", () => {
  const set = {
    AUTO_CONSUL_REGISTRY: "x",
    AUTO_CONSUL_TOOLS: "/t",
    CONSUL_HTTP_ADDR: "y",
    AWS_REGION: "z",
  };
  for (const [k, v] of Object.entries(set)) Deno.env.set(k, v);
  try {
    const env = cleanEnv({ EXTRA: "1" });
    assert.equal(env.AUTO_CONSUL_REGISTRY, undefined);
    assert.equal(env.CONSUL_HTTP_ADDR, undefined);
    assert.equal(env.AWS_REGION, undefined);
    assert.equal(env.AUTO_CONSUL_TOOLS, "/t");
    assert.equal(env.NO_COLOR, "1");
    assert.equal(env.EXTRA, "1");
  } finally {
    for (const k of Object.keys(set)) Deno.env.delete(k);
  }
});

Deno.test("Proc: output lines kept, tailed, passed on and written to a file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const seen: string[] = [];
    const p = new Proc("sh", ["-c", "echo one; echo two >&2; echo three; printf four"], {
      keepLines: 2,
      onLine: (l) => seen.push(l),
      logFile: `${dir}/log`,
    });
    const st = await p.done;
    assert.equal(st.code, 0);
    assert.equal(p.running, false);
    assert.equal(p.lines.length, 2, "only the first keepLines lines are kept");
    assert.deepEqual([...seen].sort(), ["four", "one", "three", "two"]);
    assert.deepEqual(p.tail(10).split("\n").sort(), ["four", "one", "three", "two"]);
    const file = (await Deno.readTextFile(`${dir}/log`)).trim().split("\n").sort();
    assert.deepEqual(file, ["four", "one", "three", "two"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Proc.stop: a child that ignores the signal is SIGKILLed after the grace", async () => {
  // the shell says it is ready once the trap is set: no race with the signal
  const p = new Proc("sh", ["-c", "trap '' TERM; echo ready; while :; do sleep 1; done"]);
  await waitFor(() => p.lines.includes("ready"), {
    what: "the shell's trap",
    timeoutMs: 10_000,
    intervalMs: 10,
  });
  const st = await p.stop("SIGTERM", 200);
  assert.equal(st.signal, "SIGKILL");
  assert.equal(p.running, false);
});

Deno.test("Proc.stop: a child that exits on the signal is not killed", async () => {
  const p = new Proc("sleep", ["30"]);
  const st = await p.stop("SIGTERM", 30_000);
  assert.equal(st.signal, "SIGTERM");
});
