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

/** Probes `registry`; the probe key is always deleted, even when a step fails. */
export async function probeConditionalWrites(
  registry: Registry,
  opts: { id?: () => string } = {},
): Promise<ProbeResult> {
  const key = `probe/${(opts.id ?? (() => crypto.randomUUID()))()}`;
  const body = new TextEncoder().encode("conditional-write probe\n");
  let result: ProbeResult;
  try {
    const first = await registry.createIfAbsent(key, body);
    if (first !== "created") {
      throw new RegistryError(
        `conditional-write probe: a new random key "${key}" already existed in ${registry.url}: ` +
          `expected it to be absent`,
        "probe-failed",
      );
    }
    const second = await registry.createIfAbsent(key, body);
    result = { honoured: second === "exists" };
  } catch (err) {
    await registry.delete(key).catch(() => {
      // the probe's own failure is the error worth reporting; a leftover probe key is harmless
    });
    throw err;
  }
  await registry.delete(key);
  return result;
}
