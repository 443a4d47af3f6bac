/**
 * Ctrl-C in a terminal sends SIGINT to the whole foreground process group. A client `run`
 * must still leave the cluster gracefully ("left", not "failed"): consul runs in a session of
 * its own, so it gets exactly one SIGINT, forwarded by auto-consul.
 */
import assert from "node:assert/strict";
import { REPO } from "../harness/proc.ts";
import { consulBin, randomLoopbackIp, withCluster } from "../harness/consul.ts";
import { waitFor } from "../harness/wait.ts";

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
