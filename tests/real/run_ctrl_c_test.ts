/**
 * Ctrl-C in a terminal sends SIGINT to the whole foreground process group. A client `run`
 * must still leave the cluster gracefully ("left", not "failed"): consul runs in a session of
 * its own, so it gets exactly one SIGINT, forwarded by auto-consul. A server `run` stopped with
 * SIGINT exits 0: its consul does not leave (by design) and exits 1 for that, not a failure.
 */
import assert from "node:assert/strict";
import { REPO } from "../harness/proc.ts";
import { consulBin, randomLoopbackIp, withCluster } from "../harness/consul.ts";
import { waitFor } from "../harness/wait.ts";
import { type NodeSpec, withNodes } from "../harness/nodes.ts";
import { waitForCluster } from "../harness/cluster_view.ts";

Deno.test("Ctrl-C (SIGINT to the process group) → a client run leaves gracefully and exits 0", async () => {
  const root = await Deno.makeTempDir();
  try {
    await withCluster({ servers: 1 }, async (cluster) => {
      const [server] = cluster.servers;
      const reg = `file://${root}/reg`;
      await Deno.mkdir(`${root}/reg`); // only run creates a missing registry folder
      const cli = (args: string[], env: Record<string, string> = {}) =>
        new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", "--quiet", `${REPO}/main.ts`, ...args],
          env: { NO_COLOR: "1", ...env },
          stdout: "null",
          stderr: "piped",
        });
      // The server announces itself; this node is a client by hand (set_agent).
      assert.equal(
        (await cli(["-r", reg, "heartbeat"], { CONSUL_HTTP_ADDR: server.httpAddr }).output()).code,
        0,
      );
      assert.equal((await cli(["-d", `${root}/node`, "set_agent"]).output()).code, 0);

      const ip = randomLoopbackIp();
      const node = "ctrl-c-client";
      // setsid: the run process leads a process group of its own, like a shell's foreground job.
      const child = new Deno.Command("setsid", {
        args: [
          Deno.execPath(),
          "run",
          "-A",
          "--quiet",
          `${REPO}/main.ts`,
          "-r",
          reg,
          "-a",
          ip,
          "--client",
          ip,
          "-n",
          node,
          "-d",
          `${root}/node`,
          "-t",
          "2",
          "-e",
          "10",
          "--consul-bin",
          consulBin(),
          "run",
          "--",
          "-dns-port=-1",
          "-grpc-port=-1",
        ],
        env: { NO_COLOR: "1" },
        stdout: "null",
        stderr: "piped",
      }).spawn();
      let stderr = "";
      const drained = child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
        new WritableStream({ write: (c) => void (stderr += c) }),
      );
      try {
        await waitFor(async () => {
          const m = (await server.client.members()).find((x) => x.name === node);
          return m?.status === "alive";
        }, {
          what: "the client alive in the server's member list",
          timeoutMs: 90_000,
          intervalMs: 250,
        });

        Deno.kill(-child.pid, "SIGINT"); // the whole group, as a terminal's Ctrl-C
        const status = await Promise.race([
          child.status,
          new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 30_000)),
        ]);
        assert.notEqual(status, "timeout", "run stopped");
        await drained;
        assert.equal((status as Deno.CommandStatus).code, 0, stderr.slice(-2000));
        const m = await waitFor(async () => {
          const x = (await server.client.members()).find((y) => y.name === node);
          return x && x.status !== "alive" ? x : undefined;
        }, { what: "the client's serf status to change", timeoutMs: 60_000, intervalMs: 250 });
        assert.equal(m.status, "left", "a graceful leave, not a failure");
      } finally {
        try {
          Deno.kill(-child.pid, "SIGKILL");
        } catch { /* already gone */ }
        await child.status;
      }
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("SIGINT to a server run → it does not leave (consul exits 1 by design) and run exits 0", async () => {
  await withNodes(async (nodes) => {
    const spec: NodeSpec = {
      registry: `file://${await nodes.dir("registry")}`,
      servers: 1,
      ticks: 1,
      expiry: 5,
      logLevel: "info",
    };
    const [server] = nodes.start(1, { ...spec, prefix: "ctrl-c-server" });
    try {
      await waitForCluster([server], { servers: 1, clients: 0, timeoutMs: 90_000 });
      const status = await server.stop("SIGINT", 30_000);
      assert.equal(status.code, 0, server.tail());
      const exited = server.logged(/^consul exited$/);
      assert.equal(exited.at(-1)?.code, 1, "consul itself exited 1: it did not leave");
      assert.equal(server.logged(/as a server does on a signal/).length, 1);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${nodes.tails()}`, { cause: err });
    }
  });
});
