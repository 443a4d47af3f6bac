/** A registry as the tests inspect it: opened from its URL, its place claims and heartbeats read. */
import { openRegistry } from "../../src/registry/open.ts";
import type { Registry } from "../../src/registry/registry.ts";

/** Opens a registry for inspection (the S3 endpoint from the node env, if any). */
export function inspectRegistry(url: string, env: Record<string, string> = {}): Promise<Registry> {
  return openRegistry(url, { endpoint: env.AWS_ENDPOINT_URL_S3, maxAttempts: 1 });
}

/** Claims per place: place → [{epoch, node}] in epoch order. */
export async function readSlots(
  registry: Registry,
): Promise<Map<number, { epoch: number; node: string }[]>> {
  const out = new Map<number, { epoch: number; node: string }[]>();
  const listing = await registry.list("slots/");
  for (const o of listing.objects) {
    const m = /^slots\/(\d+)\/(\d{10})$/.exec(o.key);
    if (!m) throw new Error(`unexpected key in slots/: ${o.key}`);
    const body = await registry.get(o.key, 256);
    // Listed, then gone before the read: a claim retracted (claim, then confirm) or released.
    // It holds nothing; reading it as a holder named "" made the monitor see two takeovers.
    if (body === undefined) continue;
    const node = new TextDecoder().decode(body).trim();
    const place = Number(m[1]);
    const claims = out.get(place) ?? [];
    claims.push({ epoch: Number(m[2]), node });
    claims.sort((a, b) => a.epoch - b.epoch);
    out.set(place, claims);
  }
  return out;
}

/** Heartbeat keys of `node` in `dir` ("servers" or "agents"), with their store time. */
export async function heartbeatsOf(
  registry: Registry,
  dir: "servers" | "agents",
  node: string,
): Promise<{ key: string; lastModified: Date }[]> {
  const listing = await registry.list(`${dir}/`);
  return listing.objects.filter((o) => o.key.endsWith(`-${node}`));
}
