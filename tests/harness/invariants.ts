/**
 * Cluster invariants sampled while faults happen (partition tests, the chaos soak):
 *   V1 never more raft voters than `-s` in any server's raft configuration;
 *   V2 never two leaders in one raft term (each server's own `Stats.raft` state and term);
 *   V3 no server place claimed away from a holder whose node is alive and healthy (the claim
 *      history of `slots/` only grows for places whose holder was down, see `allowedTakeover`).
 * `InvariantMonitor.sample()` takes one look at every node; `start()` samples in the background
 * until `stop()`, which returns the violations seen. Reads are raw HTTP with short timeouts
 * (a frozen or partitioned agent is skipped for that sample, never waited on).
 */
import type { Registry } from "../../src/registry/registry.ts";
import type { Node } from "./nodes.ts";
import { readSlots } from "./registry_view.ts";

/** What the monitor needs of a node: its agent's HTTP base and name. */
export interface Watched {
  readonly name: string;
  readonly ip: string;
}

export interface Violation {
  /** When it was first seen. */
  at: string;
  kind: "voters" | "two-leaders" | "place-taken" | "unhealthy";
  detail: string;
  /** How many samples saw it. */
  count: number;
}

interface RaftSelf {
  state: string;
  term: number;
}

async function getJson(url: string, timeoutMs: number): Promise<unknown> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) {
    await res.body?.cancel();
    throw new Error(`${url}: HTTP ${res.status}`);
  }
  return await res.json();
}

/** The agent's own raft state and term, or undefined for a client or a silent agent. */
export async function raftSelf(ip: string, timeoutMs = 1_000): Promise<RaftSelf | undefined> {
  try {
    const self = await getJson(`http://${ip}:8500/v1/agent/self`, timeoutMs) as {
      Stats?: { raft?: { state?: string; term?: string } };
    };
    const raft = self.Stats?.raft;
    if (!raft?.state || raft.term === undefined) return undefined;
    return { state: raft.state, term: Number(raft.term) };
  } catch {
    return undefined;
  }
}

/** Voter addresses in the agent's (stale) raft configuration, or undefined. */
export async function raftVoters(ip: string, timeoutMs = 1_000): Promise<string[] | undefined> {
  try {
    const cfg = await getJson(
      `http://${ip}:8500/v1/operator/raft/configuration?stale`,
      timeoutMs,
    ) as { Servers?: { Address: string; Voter: boolean }[] };
    return (cfg.Servers ?? []).filter((s) => s.Voter).map((s) => s.Address);
  } catch {
    return undefined;
  }
}

export interface MonitorOptions {
  /** `-s` of the cluster. */
  servers: number;
  /** The nodes to look at (read each sample, so nodes may be added). */
  nodes: () => readonly Watched[];
  /** The registry, for V3 (omit to skip it). */
  registry?: Registry;
  /**
   * Whether a new claim of `place` by `node` is allowed at this moment (V3): e.g. the previous
   * holder was killed by the fault schedule. Default: no new claim is ever allowed.
   */
  allowedTakeover?: (place: number, from: string, to: string) => boolean;
  /** Pause between samples (default 500 ms). */
  intervalMs?: number;
}

export class InvariantMonitor {
  readonly violations: Violation[] = [];
  readonly #opts: MonitorOptions;
  /** term → the servers that reported themselves leader in it. */
  readonly #leaders = new Map<number, Set<string>>();
  /** place → its top claim when last seen (holder and epoch). */
  #holders = new Map<number, { node: string; epoch: number }>();
  #samples = 0;
  #loop: Promise<void> | undefined;
  #stop = false;

  constructor(opts: MonitorOptions) {
    this.#opts = opts;
  }

  get samples(): number {
    return this.#samples;
  }

  /** Records a violation; the same one seen again only raises its count. */
  violate(kind: Violation["kind"], detail: string): void {
    const same = this.violations.find((v) => v.kind === kind && v.detail === detail);
    if (same) same.count++;
    else this.violations.push({ at: new Date().toISOString(), kind, detail, count: 1 });
  }

  /** One look at every node and the registry. */
  async sample(): Promise<void> {
    const nodes = this.#opts.nodes();
    await Promise.all(nodes.map(async (n) => {
      const [self, voters] = await Promise.all([raftSelf(n.ip), raftVoters(n.ip)]);
      if (voters && voters.length > this.#opts.servers) {
        this.violate("voters", `${n.name} reports ${voters.length} voters: ${voters.join(",")}`);
      }
      if (self?.state === "Leader") {
        const set = this.#leaders.get(self.term) ?? new Set<string>();
        set.add(n.name);
        this.#leaders.set(self.term, set);
        if (set.size > 1) {
          this.violate("two-leaders", `term ${self.term}: leaders ${[...set].join(",")}`);
        }
      }
    }));
    if (this.#opts.registry) await this.#samplePlaces(this.#opts.registry);
    this.#samples++;
  }

  async #samplePlaces(registry: Registry): Promise<void> {
    let slots: Map<number, { epoch: number; node: string }[]>;
    try {
      slots = await readSlots(registry);
    } catch {
      return; // the registry may be down on purpose
    }
    const next = new Map<number, { node: string; epoch: number }>();
    for (const [place, claims] of slots) {
      const top = claims.at(-1);
      if (top === undefined) continue;
      next.set(place, top);
      const before = this.#holders.get(place);
      // A lower epoch on top: the claim above it was deleted — a claimant that withdrew (its
      // stale holder came back while it claimed) or released a claim it could not use. The
      // place goes back to the holder it had; nobody took it (and voters are checked apart).
      const withdrawn = before !== undefined && top.epoch < before.epoch;
      if (before !== undefined && before.node !== top.node && !withdrawn) {
        const ok = this.#opts.allowedTakeover?.(place, before.node, top.node) ?? false;
        if (!ok) this.violate("place-taken", `place ${place}: ${before.node} -> ${top.node}`);
      }
    }
    this.#holders = next;
  }

  /** Samples in the background until `stop()`. */
  start(): void {
    if (this.#loop) return;
    this.#stop = false;
    this.#loop = (async () => {
      while (!this.#stop) {
        await this.sample();
        await new Promise((r) => setTimeout(r, this.#opts.intervalMs ?? 500));
      }
    })();
  }

  /** Stops the background sampling; returns the violations seen so far. */
  async stop(): Promise<Violation[]> {
    this.#stop = true;
    await this.#loop;
    this.#loop = undefined;
    return this.violations;
  }
}

/**
 * The voters of every raft configuration a node's consul logged (the leader logs each change:
 * "updating configuration ... servers=[{Suffrage:Voter ...} ...]", the configuration after it),
 * with the line. Unlike sampling, this sees a configuration that lasted a few milliseconds.
 */
export function loggedVoterCounts(node: Node): { voters: number; line: string }[] {
  return node.logs()
    .filter((l) => l.component === "consul" && /updating configuration/.test(l.msg))
    .map((l) => ({ voters: (l.msg.match(/Suffrage:Voter\b/g) ?? []).length, line: l.msg }));
}
