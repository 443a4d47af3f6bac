/**
 * The critical path of a node's start (issue 17): of the requests the S3 proxy recorded
 * between launch and consul's start, the longest chain in which each request began only after
 * the previous one had ended — requests that had to wait for each other. Its length is the
 * start path's sequential depth: at D ms per request, no start can be faster than depth × D.
 * Pure functions; `formatCriticalPath` prints the chain with the local work between requests.
 */

/** What the chain needs of a request (a `RequestRecord` of `s3_counter.ts` fits). */
export interface Timed {
  start: number;
  end: number;
  kind?: string;
  folder?: string;
  status?: number;
  path?: string;
}

export interface CriticalPath<T extends Timed> {
  /** The chain, in time order. */
  chain: T[];
  /** Its length: the sequential depth. */
  depth: number;
  /** Time spent inside the chain's requests, ms. */
  requestMs: number;
  /** Requests considered (inside the window). */
  considered: number;
}

/**
 * The longest chain of pairwise sequential requests among those that started at or after
 * `from` and ended at or before `until` (both epoch ms; default: all). Sorting by end and
 * taking every request that starts after the last one taken ends gives a longest chain (the
 * interval-scheduling greedy), so the result does not depend on the order of `records`.
 */
export function criticalPath<T extends Timed>(
  records: readonly T[],
  window: { from?: number; until?: number } = {},
): CriticalPath<T> {
  const from = window.from ?? -Infinity;
  const until = window.until ?? Infinity;
  const inside = records.filter((r) => r.start >= from && r.end <= until && answered(r));
  const byEnd = [...inside].sort((a, b) => a.end - b.end || a.start - b.start);
  const chain: T[] = [];
  let last = -Infinity;
  for (const r of byEnd) {
    if (r.start >= last) {
      chain.push(r);
      last = r.end;
    }
  }
  const requestMs = chain.reduce((s, r) => s + (r.end - r.start), 0);
  return { chain, depth: chain.length, requestMs, considered: inside.length };
}

/**
 * A request still unanswered when the window ends (the proxy records status 0 until its answer
 * comes) cannot have been waited on: e.g. a starting holder's record, sent beside consul's start.
 */
function answered(r: Timed): boolean {
  return r.status !== 0;
}

/** Requests of `records` that overlap the chain's i-th request (went out beside it). */
function beside<T extends Timed>(records: readonly T[], r: T): T[] {
  return records.filter((o) => o !== r && o.start < r.end && o.end > r.start);
}

function label(r: Timed): string {
  return `${r.kind ?? "?"} ${r.folder ?? "?"}${
    r.status !== undefined && r.status >= 300 ? ` (${r.status})` : ""
  }`;
}

/**
 * A readable critical path from `launch` (epoch ms) to `until`: one line per request of the
 * chain with its start and duration, the local work before it, and what went out beside it.
 */
export function formatCriticalPath<T extends Timed>(
  records: readonly T[],
  launch: number,
  until: number,
): string {
  const cp = criticalPath(records, { from: launch, until });
  const inside = records.filter((r) => r.start >= launch && r.end <= until && answered(r));
  const lines = [
    `critical path: ${cp.depth} requests one after the other, ${cp.requestMs.toFixed(0)} ms ` +
    `of ${(until - launch).toFixed(0)} ms from launch to consul started ` +
    `(${cp.considered} requests in that time)`,
  ];
  let at = launch;
  for (const [i, r] of cp.chain.entries()) {
    const others = beside(inside, r).map(label);
    lines.push(
      `  ${i + 1}. +${(r.start - launch).toFixed(0)} ms (local work ${
        (r.start - at).toFixed(0)
      } ms) ${label(r)}, ${(r.end - r.start).toFixed(0)} ms` +
        (others.length ? `; beside it: ${others.join(", ")}` : ""),
    );
    at = r.end;
  }
  lines.push(`  then local work ${(until - at).toFixed(0)} ms until consul started`);
  return lines.join("\n");
}
