/**
 * Does the store honour conditional writes? Creates one random key under `probe/` twice
 * with `createIfAbsent`: a store that honours the condition says "exists" the second time;
 * one that ignores it (an old S3-compatible server) says "created" again. Place claims are
 * only race-free on a store that honours it.
 */
import { RegistryError } from "../errors.ts";
import type { Registry } from "./registry.ts";

export interface ProbeResult {
  /** True when the second create of the same key was refused. */
  honoured: boolean;
}

/** A probe under way: its answer, and the deletion of its key that follows it. */
export interface RunningProbe {
  /** Settles once the second create answered (before the probe key is deleted). */
  result: Promise<ProbeResult>;
  /** Settles (never rejects) once the probe key is deleted: await it before closing. */
  settled: Promise<void>;
}

/**
 * Starts probing `registry`. The answer comes after the two creates; the key's deletion
 * follows without holding the caller up (it needs nothing from it), and is always attempted,
 * even when a step fails.
 */
export function startProbe(registry: Registry, opts: { id?: () => string } = {}): RunningProbe {
  const key = `probe/${(opts.id ?? (() => crypto.randomUUID()))()}`;
  const body = new TextEncoder().encode("conditional-write probe\n");
  const result = (async (): Promise<ProbeResult> => {
    const first = await registry.createIfAbsent(key, body);
    if (first !== "created") {
      throw new RegistryError(
        `conditional-write probe: a new random key "${key}" already existed in ${registry.url}: ` +
          `expected it to be absent`,
        "probe-failed",
      );
    }
    const second = await registry.createIfAbsent(key, body);
    return { honoured: second === "exists" };
  })();
  const settled = result.then(() => {}, () => {}).then(() =>
    registry.delete(key).catch(() => {
      // a leftover probe key is harmless; the probe's own failure is reported by `result`
    })
  );
  return { result, settled };
}

/** Probes `registry`; the probe key is always deleted, even when a step fails. */
export async function probeConditionalWrites(
  registry: Registry,
  opts: { id?: () => string } = {},
): Promise<ProbeResult> {
  const probe = startProbe(registry, opts);
  try {
    return await probe.result;
  } finally {
    await probe.settled;
  }
}
