/**
 * A node whose consul data dir was wiped comes back under its old name with a new node ID.
 * The catalog still holds the name under the old ID, and consul refuses every registration of
 * the new one ("Node name … is reserved by node …") forever: the old entry's serf health stays
 * passing, because serf sees the name alive (it is this node). Once a leader exists, the node
 * removes that stale entry itself (issue 10, docs/recovery.md "Safe settings"); consul's
 * anti-entropy then registers the node again under its new ID.
 *
 * The decision is pure (`staleCatalogEntry`); `cleanCatalog` only reads and writes.
 */
import type { ConsulClient } from "../consul/client.ts";
import type { CatalogNode, SerfMember } from "../consul/types.ts";
import { describe } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Sleep } from "../util/backoff.ts";

export type CatalogVerdict =
  /** Nothing to remove: no entry, or the entry is this agent's. Stop looking. */
  | { kind: "clean" }
  /** Not decidable yet (serf does not show this name as this agent yet): look again. */
  | { kind: "wait"; why: string }
  /** The entry belongs to another live agent (two machines, one name): never removed. */
  | { kind: "foreign"; why: string }
  /** The entry is a former incarnation of this node: remove it. */
  | { kind: "stale"; entry: CatalogNode };

/**
 * Is the catalog's entry for this node's name a stale one of its own? Only when every one
 * holds: the entry names another node ID than this agent's; serf has this name alive with this
 * agent's ID (serf resolved the name to this agent); and no serf member carries the entry's ID
 * (no live agent owns it). Two machines sharing a name never pass the second condition on both.
 */
export function staleCatalogEntry(input: {
  node: string;
  nodeId: string;
  members: readonly SerfMember[];
  entry: CatalogNode | undefined;
}): CatalogVerdict {
  const { node, nodeId, members, entry } = input;
  if (!entry || !entry.id || entry.id === nodeId) return { kind: "clean" };
  const mine = members.find((m) => m.name === node);
  if (!mine || mine.status !== "alive" || mine.tags.id !== nodeId) {
    return { kind: "wait", why: `serf does not show ${node} alive with this agent's ID yet` };
  }
  const owner = members.find((m) => m.tags.id === entry.id);
  if (owner) {
    return {
      kind: "foreign",
      why: `the catalog's ${node} (ID ${entry.id}) is serf member ${owner.name} (${owner.status})`,
    };
  }
  return { kind: "stale", entry };
}

export interface CleanCatalogOptions {
  node: string;
  ticksMs: number;
  /** Looks at most this many times once a leader exists (then gives up quietly). */
  maxChecks?: number;
}

export interface CleanCatalogDeps {
  consul: Pick<
    ConsulClient,
    "self" | "leader" | "members" | "catalogNode" | "catalogDeregister"
  >;
  sleep: Sleep;
  log: Logger;
}

/**
 * Every tick while no decision was reached: once a leader is known, reads this node's catalog
 * entry and serf's members and removes a stale entry (`staleCatalogEntry`). Resolves with what
 * it decided, or undefined when `signal` aborts or it gave up.
 */
export async function cleanCatalog(
  opts: CleanCatalogOptions,
  deps: CleanCatalogDeps,
  signal: AbortSignal,
): Promise<CatalogVerdict | undefined> {
  const maxChecks = opts.maxChecks ?? 60;
  for (let checks = 0; !signal.aborted && checks < maxChecks;) {
    try {
      if (await deps.consul.leader({ signal }) !== undefined) {
        checks++;
        const [self, members, entry] = await Promise.all([
          deps.consul.self({ signal }),
          deps.consul.members({ signal }),
          deps.consul.catalogNode(opts.node, { signal }),
        ]);
        const v = staleCatalogEntry({ node: opts.node, nodeId: self.nodeId, members, entry });
        if (v.kind === "clean") return v;
        if (v.kind === "foreign") {
          deps.log.warn(`not removing the catalog entry of ${opts.node}: ${v.why}`);
          return v;
        }
        if (v.kind === "stale") {
          await deps.consul.catalogDeregister(opts.node, { signal });
          deps.log.warn(
            `removed the stale catalog entry of ${opts.node} (node ID ${v.entry.id} at ` +
              `${v.entry.address}; this agent is ${self.nodeId}: its data dir was new): consul ` +
              `registers it again under its new ID`,
          );
          return v;
        }
      }
    } catch (err) {
      if (signal.aborted) break;
      deps.log.debug("catalog check: cannot read", { error: describe(err) });
    }
    await deps.sleep(opts.ticksMs, signal).catch(() => {});
  }
  return undefined;
}
