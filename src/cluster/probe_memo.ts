/**
 * The conditional-write probe's answer, remembered in local state for a bounded time
 * (`<data-dir>/registry-probe.json`), so that a node starting again does not pay the probe's
 * two creates and a delete on every start. Only a "honoured" answer is remembered (a store
 * found ignoring conditions is probed again on the next start, so fixing the store takes
 * effect at once), per registry (URL and endpoint), and for at most PROBE_MEMO_MS. The file
 * is a cache: an unreadable one is ignored and probed afresh.
 */
import { writeStateFile } from "../util/atomic.ts";

export const PROBE_MEMO_FILE = "registry-probe.json";
/** How long a remembered "honoured" answer is trusted. */
export const PROBE_MEMO_MS = 24 * 3600 * 1000;

export interface ProbeMemo {
  /** `registryIdentity` of the registry probed. */
  registry: string;
  honoured: boolean;
  /** When the probe answered (this node's clock). */
  checkedAt: string;
}

/** What names one registry for the memo: its URL and, when it has one, its endpoint. */
export function registryIdentity(registry: { url: string; endpoint?: string }): string {
  return registry.endpoint ? `${registry.url} at ${registry.endpoint}` : registry.url;
}

/**
 * True when `memo` says `identity` honours conditional writes and was checked less than
 * `maxAgeMs` ago (a check dated in the future, a clock that went back, is not trusted). Pure.
 */
export function probeRemembered(
  memo: ProbeMemo | undefined,
  identity: string,
  now: Date,
  maxAgeMs = PROBE_MEMO_MS,
): boolean {
  if (!memo || memo.registry !== identity || memo.honoured !== true) return false;
  const age = now.getTime() - Date.parse(memo.checkedAt);
  return Number.isFinite(age) && age >= 0 && age < maxAgeMs;
}

/** The memo in `dataDir`, or undefined when there is none or it is unreadable. */
export async function readProbeMemo(dataDir: string): Promise<ProbeMemo | undefined> {
  try {
    const v = JSON.parse(await Deno.readTextFile(`${dataDir}/${PROBE_MEMO_FILE}`));
    if (
      typeof v?.registry === "string" && typeof v.honoured === "boolean" &&
      typeof v.checkedAt === "string"
    ) return { registry: v.registry, honoured: v.honoured, checkedAt: v.checkedAt };
  } catch {
    // missing or unreadable: a cache miss
  }
  return undefined;
}

export async function writeProbeMemo(dataDir: string, memo: ProbeMemo): Promise<void> {
  await writeStateFile(`${dataDir}/${PROBE_MEMO_FILE}`, JSON.stringify(memo) + "\n");
}
