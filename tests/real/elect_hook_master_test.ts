/**
 * Whom the on-slave hook names (docs/elect.md, "Hooks"), against a real agent: never this
 * instance. A fresh-clone run of elect_test step 3 once saw a --watch master whose check turned
 * critical run its on-slave hook naming itself: the round had read the lock while its own session
 * still held it, then found that session gone (consul ends it with the check) and could not make
 * a new one (a bound check critical), and reported the lock's stale value as the master.
 *
 * Here the same state is made deterministically: the lock is held by a session of this node whose
 * value names this instance but which no longer fits (not bound to the service's check), and the
 * service's check is critical. The run adopts it, cannot create its replacement, ends it, and is
 * slave; the master is not known yet (the lock is free), so no on-slave hook may run. Once
 * another instance holds the lock, the next run's hook names that one.
 */
import assert from "node:assert/strict";
import { runCli } from "../harness/cli.ts";
import { withCluster } from "../harness/consul.ts";
import { waitFor } from "../harness/wait.ts";
import { encodeHolder } from "../../src/elect/lock.ts";

const SERVICE = "redis";
const LOCK = `auto-consul/elect/${SERVICE}/leader`;

Deno.test("elect: the on-slave hook never names this instance; it waits for another holder", async () => {
  await withCluster({ servers: 1 }, async (cluster) => {
    const agent = cluster.servers[0];
    const consul = agent.client;
    const env = { CONSUL_HTTP_ADDR: agent.httpAddr };
    const tmp = await Deno.makeTempDir({ prefix: "elect-hook-" });
    const hook = `${tmp}/hook.sh`;
    const hookLog = `${tmp}/hooks.log`;
    const readHooks = async () =>
      (await Deno.readTextFile(hookLog).catch(() => "")).split("\n").filter((l) => l);
    const once = () =>
      runCli([
        "elect",
        "--consul-service-name",
        SERVICE,
        "--consul-query-name",
        "redis-master",
        "--lock-delay",
        "0",
        "-d",
        `${tmp}/data`,
        "--json",
        "--on-slave",
        `${hook} slave`,
        "--on-master",
        `${hook} master`,
      ], { env, timeoutMs: 30_000 });
    try {
      await Deno.writeTextFile(
        hook,
        `#!/bin/sh\necho "$1 $AUTO_CONSUL_ROLE $AUTO_CONSUL_MASTER_NODE $AUTO_CONSUL_MASTER_PORT" >> ${hookLog}\n`,
      );
      await Deno.chmod(hook, 0o755);
      await consul.serviceRegister({
        ID: SERVICE,
        Name: SERVICE,
        Port: 6379,
        Check: { CheckID: "redis-ttl", Name: "redis alive", TTL: "10m" },
      });
      await consul.checkUpdate("redis-ttl", "critical", "test: down");
      // a session of this node (bound to serfHealth only: it survives the critical check and no
      // longer fits), holding the lock with a value that names this instance
      const stale = await consul.sessionCreate({
        name: "this instance's old session",
        node: agent.node,
        behavior: "delete",
        ttlMs: 60_000,
        lockDelayMs: 0,
      });
      const self = { node: agent.node, address: agent.ip, port: 6379, service: SERVICE };
      assert.ok(await consul.kvPut(LOCK, encodeHolder(self), { acquire: stale }));

      const r1 = await once();
      assert.equal(r1.code, 0, r1.stderr);
      const j1 = JSON.parse(r1.stdout.trim());
      assert.equal(j1.role, "slave", r1.stdout);
      assert.deepEqual(await readHooks(), [], `no master known yet, no hook:\n${r1.stderr}`);
      assert.notEqual(j1.master?.node, agent.node, `a slave names itself as master: ${r1.stdout}`);
      assert.equal(await consul.sessionInfo(stale), undefined, "the unfit session is ended");

      // another instance (a node known only to the catalog) takes the lock
      const other = await consul.externalSession("elsewhere", "127.0.0.1", "another instance's");
      const them = { node: "elsewhere", address: "127.0.0.1", port: 6380, service: SERVICE };
      await waitFor(() => consul.kvPut(LOCK, encodeHolder(them), { acquire: other }), {
        what: "the other instance taking the lock",
        timeoutMs: 20_000,
      });

      const r2 = await once();
      assert.equal(r2.code, 0, r2.stderr);
      assert.equal(JSON.parse(r2.stdout.trim()).master?.node, "elsewhere", r2.stdout);
      assert.deepEqual(await readHooks(), ["slave slave elsewhere 6380"], r2.stderr);
      // a slave staying slave under the same master: no second hook
      const r3 = await once();
      assert.equal(r3.code, 0, r3.stderr);
      assert.deepEqual(await readHooks(), ["slave slave elsewhere 6380"], r3.stderr);
    } finally {
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
    }
  });
});
