/**
 * A counting reverse proxy in front of the S3 server, on loopback: every request is
 * forwarded unchanged (method, path, query, headers, body) and counted by kind — PUT, LIST
 * (GET with `list-type=2`), GET, DELETE, HEAD, other — and by the registry folder it touches
 * (`servers`, `agents`, `slots`, `probe`, ...). What the store sees, not an estimate.
 *
 * It can also stand for a real region (issue 17): every request waits `delayMs` (± `jitterMs`,
 * uniform) before it is forwarded, and a share `slowDown` of requests is answered
 * `503 SlowDown` (as S3 does when a prefix is over its request rate) without reaching the
 * store. Every request is recorded with its start and end (epoch ms) so a script can find the
 * critical path (`critical_path.ts`).
 *
 *   const counter = startS3Counter(s3.endpoint, "127.18.0.1", { delayMs: 25 });
 *   // point auto-consul at counter.endpoint; later: counter.snapshot(), counter.records(),
 *   // counter.stop()
 */

import { memoryS3 } from "./memory_s3.ts";

export type Kind = "PUT" | "LIST" | "GET" | "DELETE" | "HEAD" | "other";
export const KINDS: readonly Kind[] = ["PUT", "LIST", "GET", "DELETE", "HEAD", "other"];

export interface Counts {
  total: Record<Kind, number>;
  /** "PUT agents", "LIST servers", ... */
  byFolder: Record<string, number>;
  /** Summed forwarding time per kind, ms (the store's answer time plus the proxy hop). */
  ms: Record<Kind, number>;
}

/** One request as the proxy saw it. Times are epoch ms (`performance.timeOrigin`-based). */
export interface RequestRecord {
  /** Arrival order, from 0. */
  seq: number;
  kind: Kind;
  folder: string;
  method: string;
  /** Path and query as received (bucket and key). */
  path: string;
  /** When the request arrived at the proxy. */
  start: number;
  /** When its answer was sent back. */
  end: number;
  status: number;
  /** Answered 503 SlowDown by the proxy (never reached the store). */
  injected: boolean;
}

export interface ProxyOptions {
  /** Added before forwarding, ms (default 0). */
  delayMs?: number;
  /** Uniform jitter around `delayMs`, ms (default 0): the delay is delayMs ± jitterMs. */
  jitterMs?: number;
  /** Share of requests answered `503 SlowDown` (0..1, default 0). */
  slowDown?: number;
  /** Random source for jitter and faults (default Math.random). */
  random?: () => number;
  /** Keep per-request records (default true; a long soak may turn them off). */
  record?: boolean;
  /**
   * Let clients keep their connections (default true). False answers every request with
   * `Connection: close`: a thousand clients in a storm would otherwise hold more sockets open
   * than the process may (20,000 descriptors here), each costing a loopback connect instead.
   */
  keepAlive?: boolean;
}

export interface S3Counter {
  /** Where clients send their requests, e.g. "http://127.18.0.1:40123". */
  readonly endpoint: string;
  /** A copy of the counts so far. */
  snapshot(): Counts;
  /** The requests so far, in arrival order (a copy). */
  records(): RequestRecord[];
  /** Clears counts and records. */
  reset(): void;
  stop(): Promise<void>;
}

/** The kind of an S3 request, from its method and query. */
export function kindOf(method: string, search: URLSearchParams): Kind {
  if (method === "GET" && search.get("list-type") === "2") return "LIST";
  if (method === "GET" || method === "PUT" || method === "DELETE" || method === "HEAD") {
    return method;
  }
  return "other";
}

/**
 * The registry folder a request touches: the path segment after `servers|agents|slots|probe`
 * is recognised in a key (path-style `/<bucket>/<prefix>/<folder>/...`) or in a LIST prefix.
 */
export function folderOf(url: URL): string {
  const where = url.searchParams.get("prefix") ?? url.pathname;
  const m = /(?:^|\/)(servers|agents|slots|probe)(?:\/|$)/.exec(where);
  return m ? m[1] : "-";
}

function zero(): Counts {
  const z = () => Object.fromEntries(KINDS.map((k) => [k, 0])) as Record<Kind, number>;
  return { total: z(), byFolder: {}, ms: z() };
}

const HOP_HEADERS = ["content-encoding", "content-length", "transfer-encoding", "connection"];

/** Wall clock in epoch ms with sub-ms resolution. */
export const nowMs = (): number => performance.timeOrigin + performance.now();

/** S3's throttling answer, as AWS sends it. */
function slowDownResponse(close: boolean): Response {
  const body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>' +
    "<Message>Please reduce your request rate.</Message>" +
    `<RequestId>${crypto.randomUUID()}</RequestId></Error>`;
  return new Response(body, {
    status: 503,
    headers: { "content-type": "application/xml", ...(close ? { connection: "close" } : {}) },
  });
}

/**
 * `target`: the S3 server's endpoint, or "memory" for the in-memory store of `memory_s3.ts`
 * (the boot storm at a thousand nodes, where moto would be the bottleneck).
 */
export function startS3Counter(target: string, host: string, opts: ProxyOptions = {}): S3Counter {
  const memory = target === "memory" ? memoryS3() : undefined;
  let counts = zero();
  let log: RequestRecord[] = [];
  let seq = 0;
  const random = opts.random ?? Math.random;
  const delayMs = opts.delayMs ?? 0;
  const jitterMs = opts.jitterMs ?? 0;
  const slowDown = opts.slowDown ?? 0;
  const upstream = target.replace(/\/+$/, "");
  const server = Deno.serve({ hostname: host, port: 0, onListen: () => {} }, async (req) => {
    const start = nowMs();
    const url = new URL(req.url);
    const kind = kindOf(req.method, url.searchParams);
    const folder = `${kind} ${folderOf(url)}`;
    counts.total[kind]++;
    counts.byFolder[folder] = (counts.byFolder[folder] ?? 0) + 1;
    const t0 = performance.now();
    const rec: RequestRecord = {
      seq: seq++,
      kind,
      folder: folderOf(url),
      method: req.method,
      path: url.pathname + url.search,
      start,
      end: start,
      status: 0,
      injected: false,
    };
    if (opts.record !== false) log.push(rec);
    const done = (res: Response): Response => {
      rec.end = nowMs();
      rec.status = res.status;
      return res;
    };
    const headers = new Headers(req.headers);
    headers.delete("host");
    const bytes = new Uint8Array(await req.arrayBuffer());
    const body = bytes.length > 0 || req.method === "PUT" ? bytes : undefined;
    if (delayMs > 0 || jitterMs > 0) {
      const wait = Math.max(0, delayMs + (random() * 2 - 1) * jitterMs);
      await new Promise((r) => setTimeout(r, wait));
    }
    if (slowDown > 0 && random() < slowDown) {
      rec.injected = true;
      counts.ms[kind] += performance.now() - t0;
      return done(slowDownResponse(opts.keepAlive === false));
    }
    try {
      const init = { method: req.method, headers, body, redirect: "manual" as const };
      const res = memory
        ? await memory(new Request(`http://memory${url.pathname}${url.search}`, init))
        : await fetch(upstream + url.pathname + url.search, init);
      const out = new Uint8Array(await res.arrayBuffer());
      const back = new Headers(res.headers);
      for (const h of HOP_HEADERS) back.delete(h);
      if (opts.keepAlive === false) back.set("connection", "close");
      const noBody = req.method === "HEAD" || [204, 205, 304].includes(res.status);
      return done(
        new Response(noBody ? null : out, {
          status: res.status,
          headers: back,
        }),
      );
    } catch (err) {
      return done(new Response(`proxy: ${(err as Error).message}`, { status: 502 }));
    } finally {
      counts.ms[kind] += performance.now() - t0;
    }
  });
  const addr = server.addr as Deno.NetAddr;
  return {
    endpoint: `http://${host}:${addr.port}`,
    snapshot: () => structuredClone(counts),
    records: () => log.map((r) => ({ ...r })),
    reset: () => {
      counts = zero();
      log = [];
    },
    stop: async () => {
      await server.shutdown();
    },
  };
}

/** `b - a`, kind by kind and folder by folder. */
export function diff(a: Counts, b: Counts): Counts {
  const out = zero();
  for (const k of KINDS) {
    out.total[k] = b.total[k] - a.total[k];
    out.ms[k] = b.ms[k] - a.ms[k];
  }
  for (const [f, n] of Object.entries(b.byFolder)) {
    const d = n - (a.byFolder[f] ?? 0);
    if (d) out.byFolder[f] = d;
  }
  return out;
}
