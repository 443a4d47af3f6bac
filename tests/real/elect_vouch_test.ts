/**
 * The vouch key (src/elect/vouch.ts) across electors of one node, against a real agent.
 *
 * A fresh-clone CI run failed once with `could not take this node's vouch key ... (held by
 * another session of node ...)`: a `--once` run became master while the key was still held by
 * the session of a `--watch` of the same node that had just stepped down (its session outlived
 * it). Two rules keep that from wedging an instance:
 *   - stepping down releases the vouch key before the lock, so it stays a slave's plain key
 *     even when the session cannot be destroyed;
 *   - a master whose vouch key is held by another session of its own node ends that session
 *     (stale: this node's elector holds the lock) and takes the key;
 *   - a session of this node that no longer fits (here: a --once session, not bound to the
 *     --watch's alive check) is replaced with the lock and vouch key handed over in one
 *     transaction: the lock is never free, no lock-delay, no other master.
 */
import assert from "node:assert/strict";
import { runCli, spawnCli } from "../harness/cli.ts";
import { withCluster } from "../harness/consul.ts";
import { waitFor } from "../harness/wait.ts";

const SERVICE = "redis";
const LOCK = `auto-consul/elect/${SERVICE}/leader`;
const ARGS = [
  "elect",
  "--consul-service-name",
  SERVICE,
  "--consul-query-name",
  "redis-master",
  "--lock-delay",
  "1",
];

Deno.test("elect: the vouch key outlives a stopped watcher as a slave's key; a stale session of this node holding it is ended", async (t) => {
  await withCluster({ servers: 1 }, async (cluster) => {
    const agent = cluster.servers[0];
    const consul = agent.client;
    const vouch = `${LOCK}/vouch/${agent.node}`;
    const env = { CONSUL_HTTP_ADDR: agent.httpAddr };
    const tmp = await Deno.makeTempDir({ prefix: "elect-vouch-" });
    try {
      await consul.serviceRegister({
        ID: SERVICE,
        Name: SERVICE,
        Port: 6379,
        Check: { CheckID: "redis-ttl", Name: "redis alive", TTL: "10m" },
      });
      await consul.checkUpdate("redis-ttl", "passing");

      await t.step(
        "a --watch master stepping down leaves the key present, held by nobody",
        async () => {
          const watch = spawnCli([...ARGS, "-d", `${tmp}/watch`, "--watch"], { env });
          try {
            await waitFor(async () => {
              const [lock, key] = await Promise.all([consul.kvGet(LOCK), consul.kvGet(vouch)]);
              return lock.session !== undefined && key.session === lock.session;
            }, { what: "the watcher holding the lock and its vouch key", timeoutMs: 20_000 });
            // its session is bound to its alive check, which it passes
            const session = (await consul.kvGet(LOCK)).session!;
            const info = await consul.sessionInfo(session);
            assert.deepEqual(info?.serviceChecks.map((c) => c.id).sort(), [
              `auto-consul-elect-alive:${SERVICE}`,
              "redis-ttl",
            ]);
            const alive = (await consul.agentChecks())[`auto-consul-elect-alive:${SERVICE}`];
            assert.equal(alive?.status, "passing");
          } finally {
            const st = await watch.stop("SIGTERM", 10_000);
            assert.equal(st.code, 0, watch.tail());
          }
          const [lock, key] = await Promise.all([consul.kvGet(LOCK), consul.kvGet(vouch)]);
          assert.equal(lock.session, undefined, `the lock is released:\n${watch.tail()}`);
          assert.ok(key.entry, `the vouch key is still there:\n${watch.tail()}`);
          assert.equal(key.session, undefined, "held by no session");
          // a stopped elector is not a failing instance: its alive check (alive.ts) is gone
          const checks = await consul.agentChecks();
          assert.equal(checks[`auto-consul-elect-alive:${SERVICE}`], undefined, watch.tail());
        },
      );

      await t.step(
        "--once becomes master though a stale session of this node holds the key",
        async () => {
          const stale = await consul.sessionCreate({
            name: "a watcher's session that outlived it",
            node: agent.node,
            behavior: "delete",
            ttlMs: 60_000,
            lockDelayMs: 0,
          });
          assert.ok(await consul.kvPut(vouch, "", { acquire: stale }));
          const r = await runCli([...ARGS, "-d", `${tmp}/once`, "--json"], {
            env,
            timeoutMs: 20_000,
          });
          assert.equal(r.code, 0, r.stderr);
          assert.equal(JSON.parse(r.stdout.trim()).role, "master", r.stdout);
          const [lock, key] = await Promise.all([consul.kvGet(LOCK), consul.kvGet(vouch)]);
          assert.ok(lock.session && lock.session !== stale);
          assert.equal(key.session, lock.session, "the master's session holds its vouch key");
          assert.equal(await consul.sessionInfo(stale), undefined, "the stale session is ended");
          assert.match(r.stderr, /ended session .* stale/);
        },
      );

      await t.step(
        "a --watch after this node's --once master keeps the lock: the session is handed over, never free",
        async () => {
          const before = await consul.kvGet(LOCK);
          assert.ok(before.session, "the --once run of the step before holds the lock");
          const watch = spawnCli([...ARGS, "-d", `${tmp}/watch2`, "--watch"], { env });
          const free: number[] = [];
          try {
            // the --once session is not bound to the watcher's alive check: it is replaced
            const after = await waitFor(async () => {
              const lock = await consul.kvGet(LOCK);
              if (lock.session === undefined) free.push(Date.now());
              return lock.session && lock.session !== before.session ? lock : undefined;
            }, {
              what: "the lock held by the watcher's session",
              timeoutMs: 20_000,
              intervalMs: 20,
            });
            assert.equal(free.length, 0, `the lock was free at ${free}:\n${watch.tail()}`);
            assert.equal((await consul.kvGet(vouch)).session, after.session, watch.tail());
            // then the old one is ended (after the transaction, a moment later)
            await waitFor(async () => await consul.sessionInfo(before.session!) === undefined, {
              what: "the old session ended",
            });
            await waitFor(() => watch.lines.some((l) => /handed over to the new session/.test(l)), {
              what: "the handover logged",
            });
            assert.ok((await consul.agentService(SERVICE))?.Tags?.includes("master"));
          } finally {
            const st = await watch.stop("SIGTERM", 10_000);
            assert.equal(st.code, 0, watch.tail());
          }
        },
      );

      await t.step(
        "a key held by a session of another node is not touched: the run fails naming it, no master tag",
        async () => {
          // the last run's session is kept in its state: end it so the lock is free for a new one
          const lock = await consul.kvGet(LOCK);
          if (lock.session) await consul.sessionDestroy(lock.session);
          await consul.serviceRegister({
            ID: SERVICE,
            Name: SERVICE,
            Port: 6379,
            Tags: ["slave"],
            Check: { CheckID: "redis-ttl", Name: "redis alive", TTL: "10m" },
          });
          await consul.checkUpdate("redis-ttl", "passing");
          // an external node in the catalog, and a session of it (no serfHealth: no checks)
          const other = await consul.externalSession("elsewhere", "127.0.0.1", "another node's");
          // the ended session's lock-delay (1 s) applies to the key it held
          await waitFor(() => consul.kvPut(vouch, "", { acquire: other }), {
            what: "the other node's session taking the key",
            timeoutMs: 20_000,
          });
          const r = await runCli([...ARGS, "-d", `${tmp}/once2`, "--json"], {
            env,
            timeoutMs: 20_000,
          });
          assert.notEqual(r.code, 0, r.stdout);
          assert.match(r.stderr, new RegExp(`could not take this node's vouch key ${vouch}`));
          assert.equal((await consul.sessionInfo(other))?.node, "elsewhere", "left alone");
          assert.equal((await consul.kvGet(vouch)).session, other);
          const tags = (await consul.agentService(SERVICE))?.Tags ?? [];
          assert.ok(!tags.includes("master"), `tags: ${tags}`);
        },
      );
    } finally {
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
    }
  });
});
