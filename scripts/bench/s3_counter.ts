/**
 * A counting reverse proxy in front of the S3 server, on loopback: every request is
 * forwarded unchanged (method, path, query, headers, body) and counted by kind — PUT, LIST
 * (GET with `list-type=2`), GET, DELETE, HEAD, other — and by the registry folder it touches
 * (`servers`, `agents`, `slots`, `probe`, ...). What the store sees, not an estimate.
 *
 *   const counter = startS3Counter(s3.endpoint, "127.18.0.1");
 *   // point auto-consul at counter.endpoint; later: counter.snapshot(), counter.stop()
 */

export type Kind = "PUT" | "LIST" | "GET" | "DELETE" | "HEAD" | "other";
export const KINDS: readonly Kind[] = ["PUT", "LIST", "GET", "DELETE", "HEAD", "other"];

export interface Counts {
  total: Record<Kind, number>;
  /** "PUT agents", "LIST servers", ... */
  byFolder: Record<string, number>;
  /** Summed forwarding time per kind, ms (the store's answer time plus the proxy hop). */
  ms: Record<Kind, number>;
}

export interface S3Counter {
  /** Where clients send their requests, e.g. "http://127.18.0.1:40123". */
  readonly endpoint: string;
  /** A copy of the counts so far. */
  snapshot(): Counts;
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

export function startS3Counter(target: string, host: string): S3Counter {
  let counts = zero();
  const upstream = target.replace(/\/+$/, "");
  const server = Deno.serve({ hostname: host, port: 0, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    const kind = kindOf(req.method, url.searchParams);
    const folder = `${kind} ${folderOf(url)}`;
    counts.total[kind]++;
    counts.byFolder[folder] = (counts.byFolder[folder] ?? 0) + 1;
    const t0 = performance.now();
    const headers = new Headers(req.headers);
    headers.delete("host");
    const bytes = new Uint8Array(await req.arrayBuffer());
    const body = bytes.length > 0 || req.method === "PUT" ? bytes : undefined;
    try {
      const res = await fetch(upstream + url.pathname + url.search, {
        method: req.method,
        headers,
        body,
        redirect: "manual",
      });
      const out = new Uint8Array(await res.arrayBuffer());
      const back = new Headers(res.headers);
      for (const h of HOP_HEADERS) back.delete(h);
      const noBody = req.method === "HEAD" || [204, 205, 304].includes(res.status);
      return new Response(noBody ? null : out, {
        status: res.status,
        headers: back,
      });
    } catch (err) {
      return new Response(`proxy: ${(err as Error).message}`, { status: 502 });
    } finally {
      counts.ms[kind] += performance.now() - t0;
    }
  });
  const addr = server.addr as Deno.NetAddr;
  return {
    endpoint: `http://${host}:${addr.port}`,
    snapshot: () => structuredClone(counts),
    reset: () => {
      counts = zero();
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
