/**
 * One process of the boot storm (`boot_storm.ts`): many registry clients, each deciding its
 * mode as `run` does (`decideMode`, retried with run's backoff when a call fails) and then
 * writing its first heartbeat — no consul. Each client has its own S3 client (its own
 * connections) and its own data dir. Prints "ready" once every client is built, starts them
 * all when a line arrives on stdin, and prints one JSON line per client at the end.
 *
 *   deno run -A scripts/bench/storm_worker.ts '{"prefix":..., "first":0, "count":250, ...}'
 */
import { decideMode } from "../../src/cluster/mode.ts";
import { Logger } from "../../src/log.ts";
import { writeHeartbeat } from "../../src/registry/heartbeats.ts";
import type { Registry } from "../../src/registry/registry.ts";
import { S3Registry } from "../../src/registry/s3.ts";
import { backoffDelay, sleep } from "../../src/util/backoff.ts";

export interface WorkerSpec {
  endpoint: string;
  bucket: string;
  prefix: string;
  /** Index of this worker's first node (node names are storm-<i>). */
  first: number;
  count: number;
  servers: number;
  expiry: number;
  dataRoot: string;
}

export interface WorkerResult {
  node: string;
  mode?: string;
  /** Epoch ms. */
  decided?: number;
  beat?: number;
  /** Registry calls made (each may be several HTTP requests when the SDK retries). */
  calls: number;
  /** Whole mode decisions or heartbeats that failed and were tried again (run's backoff). */
  retries: number;
  error?: string;
}

/** Counts the calls made through a registry. */
class Counting implements Registry {
  calls = 0;
  constructor(readonly inner: Registry) {}
  get url() {
    return this.inner.url;
  }
  list(dir: string) {
    this.calls++;
    return this.inner.list(dir);
  }
  get(key: string, max: number) {
    this.calls++;
    return this.inner.get(key, max);
  }
  put(key: string, body: Uint8Array) {
    this.calls++;
    return this.inner.put(key, body);
  }
  createIfAbsent(key: string, body: Uint8Array) {
    this.calls++;
    return this.inner.createIfAbsent(key, body);
  }
  delete(key: string) {
    this.calls++;
    return this.inner.delete(key);
  }
  close() {
    this.inner.close();
  }
}

const BACKOFF = { initialMs: 1000, maxMs: 30_000 };
const MAX_TRIES = 8;
const now = () => performance.timeOrigin + performance.now();

async function retried<T>(fn: () => Promise<T>, r: WorkerResult): Promise<T> {
  for (let attempt = 0;; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt + 1 >= MAX_TRIES) throw err;
      r.retries++;
      await sleep(backoffDelay(attempt, BACKOFF, Math.random));
    }
  }
}

async function oneNode(spec: WorkerSpec, i: number, registry: Counting): Promise<WorkerResult> {
  const node = `storm-${i}`;
  const r: WorkerResult = { node, calls: 0, retries: 0 };
  const log = new Logger({ level: "error", sink: () => {} });
  try {
    const decided = await retried(() =>
      decideMode({
        node,
        servers: spec.servers,
        expirySeconds: spec.expiry,
        dataDir: `${spec.dataRoot}/${node}`,
        advisory: false,
        settleMs: 5000,
      }, { registry, log, sleep, random: Math.random }), r);
    r.mode = decided.mode;
    r.decided = now();
    const address = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    await retried(() =>
      writeHeartbeat(registry, {
        node,
        address,
        dirs: decided.mode === "server" ? ["servers", "agents"] : ["agents"],
        now: new Date(),
        previous: [],
      }, log), r);
    r.beat = now();
  } catch (err) {
    r.error = (err as Error).message;
  }
  r.calls = registry.calls;
  return r;
}

if (import.meta.main) {
  const spec: WorkerSpec = JSON.parse(Deno.args[0]);
  const registries = Array.from({ length: spec.count }, () =>
    new Counting(
      new S3Registry({ bucket: spec.bucket, prefix: spec.prefix, endpoint: spec.endpoint }),
    ));
  await Promise.all(
    registries.map((_, j) =>
      Deno.mkdir(`${spec.dataRoot}/storm-${spec.first + j}`, {
        recursive: true,
      })
    ),
  );
  console.log("ready");
  const reader = Deno.stdin.readable.getReader();
  await reader.read();
  reader.releaseLock();
  const results = await Promise.all(
    registries.map((reg, j) => oneNode(spec, spec.first + j, reg)),
  );
  for (const reg of registries) reg.close();
  console.log(results.map((r) => JSON.stringify(r)).join("\n"));
}
