/**
 * The short start path (issue 17), in process on a folder registry: the probe's answer is
 * remembered per registry for a bounded time, only the claims that can decide something are
 * read, the live servers read for the decision are returned for -retry-join, and the probe key
 * is always deleted. Pure parts table-tested.
 */
import assert from "node:assert/strict";
import { claimBodiesNeeded } from "../src/cluster/decision_view.ts";
import { CLAIMING_FILE, decideMode, type ModeOptions } from "../src/cluster/mode.ts";
import { slotKey } from "../src/registry/layout.ts";
import {
  PROBE_MEMO_FILE,
  PROBE_MEMO_MS,
  probeRemembered,
  registryIdentity,
} from "../src/cluster/probe_memo.ts";
import { Logger } from "../src/log.ts";
import { FileRegistry } from "../src/registry/file.ts";
import { heartbeatKey } from "../src/registry/layout.ts";
import type { Registry } from "../src/registry/registry.ts";
import { sleep } from "../src/util/backoff.ts";

const quiet = new Logger({ sink: () => {} });
const enc = (s: string) => new TextEncoder().encode(s);

/** Records every call made through a registry, as "op key". */
class Recording implements Registry {
  calls: string[] = [];
  constructor(readonly inner: Registry) {}
  get url() {
    return this.inner.url;
  }
  list(dir: string) {
    this.calls.push(`list ${dir}`);
    return this.inner.list(dir);
  }
  get(key: string, max: number) {
    this.calls.push(`get ${key}`);
    return this.inner.get(key, max);
  }
  put(key: string, body: Uint8Array) {
    this.calls.push(`put ${key}`);
    return this.inner.put(key, body);
  }
  createIfAbsent(key: string, body: Uint8Array) {
    this.calls.push(`create ${key}`);
    return this.inner.createIfAbsent(key, body);
  }
  delete(key: string) {
    this.calls.push(`delete ${key}`);
    return this.inner.delete(key);
  }
  close() {
    this.inner.close();
  }
  count(prefix: string): number {
    return this.calls.filter((c) => c.startsWith(prefix)).length;
  }
}

async function withDirs<T>(fn: (root: string) => Promise<T>): Promise<T> {
  const root = await Deno.makeTempDir({ prefix: "auto-consul-start-path-" });
  try {
    return await fn(root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

function options(root: string, node: string, servers = 3): ModeOptions {
  return {
    node,
    servers,
    expirySeconds: 60,
    dataDir: `${root}/${node}`,
    advisory: false,
    settleMs: 0,
  };
}

/** Every place held by a live server that heartbeats now. */
async function fillHeld(registry: Registry, servers: number): Promise<void> {
  for (let k = 0; k < servers; k++) {
    await registry.put(heartbeatKey("servers", new Date(), `held-${k}`), enc(`10.0.0.${k + 1}`));
    await registry.createIfAbsent(slotKey(k, 1), enc(`held-${k}`));
  }
}

Deno.test("probe memo: trusted for the same registry, honoured, within the bound (table)", () => {
  const now = new Date("2026-12-02T12:00:00Z");
  const at = (ms: number) => new Date(now.getTime() - ms).toISOString();
  const id = "s3://b/p at http://127.0.0.1:9000";
  const cases: [string, Parameters<typeof probeRemembered>[0], boolean][] = [
    ["none", undefined, false],
    ["fresh", { registry: id, honoured: true, checkedAt: at(1000) }, true],
    ["just inside", { registry: id, honoured: true, checkedAt: at(PROBE_MEMO_MS - 1) }, true],
    ["too old", { registry: id, honoured: true, checkedAt: at(PROBE_MEMO_MS) }, false],
    ["another registry", { registry: "s3://b/q", honoured: true, checkedAt: at(0) }, false],
    [
      "not honoured is never remembered",
      { registry: id, honoured: false, checkedAt: at(0) },
      false,
    ],
    ["dated in the future", { registry: id, honoured: true, checkedAt: at(-60_000) }, false],
    ["garbage date", { registry: id, honoured: true, checkedAt: "yesterday" }, false],
  ];
  for (const [name, memo, want] of cases) {
    assert.equal(probeRemembered(memo, id, now), want, name);
  }
  assert.equal(registryIdentity({ url: "s3://b/p" }), "s3://b/p");
  assert.equal(
    registryIdentity({ url: "s3://b/p", endpoint: "http://127.0.0.1:9000" }),
    "s3://b/p at http://127.0.0.1:9000",
  );
});

Deno.test("claim bodies are read only when they can decide something (table)", () => {
  const fresh = (place: number) => ({ place, ageSeconds: 5 });
  const old = (place: number) => ({ place, ageSeconds: 500 });
  const o = { servers: 3, expirySeconds: 60, mightHold: false };
  const cases: [string, { place: number; ageSeconds: number }[], typeof o, boolean][] = [
    [
      "every place freshly claimed: client, whoever holds them",
      [fresh(0), fresh(1), fresh(2)],
      o,
      false,
    ],
    ["claims beyond -s do not fill a place", [fresh(0), fresh(1), fresh(5)], o, true],
    ["a free place: the holders decide how many may be taken", [fresh(0), fresh(1)], o, true],
    ["no claim at all: nothing to read anyway", [], o, true],
    ["an old claim may be stale: its holder decides", [fresh(0), fresh(1), old(2)], o, true],
    ["this node may hold one: read them", [fresh(0), fresh(1), fresh(2)], {
      ...o,
      mightHold: true,
    }, true],
  ];
  for (const [name, claims, opts, want] of cases) {
    assert.equal(claimBodiesNeeded(claims, opts), want, name);
  }
});

Deno.test("decideMode: the probe's answer is remembered, the probe key always deleted", async () => {
  await withDirs(async (root) => {
    const registry = new Recording(new FileRegistry({ root: `${root}/registry` }));
    const deps = { registry, log: quiet, sleep, random: Math.random };
    const first = await decideMode(options(root, "a"), deps);
    await first.settled;
    assert.equal(first.mode, "server");
    assert.equal(registry.count("create probe/"), 2);
    assert.equal(registry.count("delete probe/"), 1);
    assert.deepEqual((await registry.list("probe/")).objects, []);
    const memo = JSON.parse(await Deno.readTextFile(`${root}/a/${PROBE_MEMO_FILE}`));
    assert.equal(memo.registry, registry.url);
    assert.equal(memo.honoured, true);

    registry.calls = [];
    const again = await decideMode(options(root, "a"), deps);
    await again.settled;
    assert.equal(again.mode, "server");
    assert.match(again.reason, /holds server place 0/);
    assert.equal(registry.count("create probe/"), 0, registry.calls.join("\n"));

    // a day later it is probed again
    registry.calls = [];
    const later = () => new Date(Date.now() + PROBE_MEMO_MS + 1000);
    await (await decideMode(options(root, "a"), { ...deps, now: later })).settled;
    assert.equal(registry.count("create probe/"), 2);
  });
});

Deno.test("decideMode: a store that ignores conditions is probed on every start", async () => {
  await withDirs(async (root) => {
    const registry = new Recording(
      new FileRegistry({ root: `${root}/registry`, ignoreConditions: true }),
    );
    const deps = { registry, log: quiet, sleep, random: () => 0 };
    for (let i = 0; i < 2; i++) {
      await assert.rejects(decideMode(options(root, "a"), deps), /ignores conditional writes/);
    }
    assert.equal(registry.count("create probe/"), 4);
    assert.deepEqual((await registry.list("probe/")).objects, []);
    const advisory = await decideMode({ ...options(root, "a"), advisory: true }, deps);
    await advisory.settled;
    assert.equal(advisory.mode, "server");
    assert.deepEqual((await registry.list("probe/")).objects, []);
  });
});

Deno.test("decideMode: a client reads the servers once, with their addresses for -retry-join", async () => {
  await withDirs(async (root) => {
    const registry = new Recording(new FileRegistry({ root: `${root}/registry` }));
    await fillHeld(registry, 3);
    registry.calls = [];
    const r = await decideMode(options(root, "newcomer"), {
      registry,
      log: quiet,
      sleep,
      random: Math.random,
    });
    await r.settled;
    assert.equal(r.mode, "agent");
    assert.deepEqual(r.liveServers?.map((m) => m.address).sort(), [
      "10.0.0.1",
      "10.0.0.2",
      "10.0.0.3",
    ]);
    assert.equal(registry.count("list servers/"), 1, registry.calls.join("\n"));
    assert.equal(registry.count("list slots/"), 1);
    // the places were claimed just now: who holds them cannot change a newcomer's mind
    assert.equal(registry.count("get slots/"), 0, registry.calls.join("\n"));
    assert.equal(registry.count("get servers/"), 3);
  });
});

Deno.test("decideMode: a node that may hold a place reads every claim and keeps its place", async () => {
  await withDirs(async (root) => {
    const registry = new Recording(new FileRegistry({ root: `${root}/registry` }));
    await fillHeld(registry, 3);
    const deps = { registry, log: quiet, sleep, random: Math.random };
    // held-1's data dir is gone, but its heartbeat names it: it still holds place 1
    const held = await decideMode(options(root, "held-1"), deps);
    await held.settled;
    assert.equal(held.mode, "server");
    assert.match(held.reason, /holds server place 1/);
    assert.equal(registry.count("get slots/"), 3);

    // a node that was sending a claim when it stopped (the intent is in its data dir), with
    // no heartbeat yet: it reads the claims and finds the place it claimed
    await registry.createIfAbsent(slotKey(3, 1), enc("crashed"));
    await Deno.mkdir(`${root}/crashed`, { recursive: true });
    await Deno.writeTextFile(`${root}/crashed/${CLAIMING_FILE}`, "crashed\n");
    registry.calls = [];
    const crashed = await decideMode(options(root, "crashed", 4), deps);
    await crashed.settled;
    assert.equal(crashed.mode, "server");
    assert.match(crashed.reason, /holds server place 3/);
    await assert.rejects(Deno.stat(`${root}/crashed/${CLAIMING_FILE}`), Deno.errors.NotFound);
  });
});
