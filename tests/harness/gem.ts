/**
 * A "gem node" for mixed-fleet tests: what the Ruby gem (ethanrowe/auto-consul) makes of a
 * machine, reproduced without Ruby. A real `consul agent` started with the gem's arguments
 * (`runner.rb`: `-bind IP -data-dir <data>/<mode> -node NAME`, plus `-server` and, for the
 * first server, `-bootstrap`), then `consul join IP` once it is up (the gem's join), and
 * heartbeats in the gem's exact bytes (`providers/s3.rb`): the key
 * `<dir>/<UTC %Y%m%d%H%M%S>-<node>`, the body the bare IP, servers writing `servers/` and
 * `agents/`, agents `agents/` only; after each write the gem's purge of keys older than the
 * expiry in that directory. Never anything under `slots/`.
 *
 * The harness's own consul settings (a loopback address with `-client` there, no DNS/gRPC
 * port, fast raft) are added so that tests can run side by side; they change nothing the
 * mixed fleet depends on. Always dispose (stops the beats, then consul).
 */
import type { Registry } from "../../src/registry/registry.ts";
import { type Agent, consulBin, startAgent } from "./consul.ts";

export interface GemNodeOptions {
  registry: Registry;
  node: string;
  server: boolean;
  /** The first server of a gem cluster: `-server -bootstrap`. */
  bootstrap?: boolean;
  /** The address the gem would `consul join` once up (the first live member it read). */
  join?: string;
  /** Heartbeat interval (the gem's cron or `-t`), ms. */
  ticksMs: number;
  /** The gem's `-e`, seconds (its purge boundary). */
  expirySeconds: number;
}

/** The gem's stamp: `time.utc.strftime('%Y%m%d%H%M%S')`, written independently of src/. */
export function gemStamp(t: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${p(t.getUTCFullYear(), 4)}${p(t.getUTCMonth() + 1)}${p(t.getUTCDate())}` +
    `${p(t.getUTCHours())}${p(t.getUTCMinutes())}${p(t.getUTCSeconds())}`;
}

export class GemNode {
  readonly agent: Agent;
  readonly opts: GemNodeOptions;
  /** Keys this node wrote, in order. */
  readonly written: string[] = [];
  /** Time of the last heartbeat written (ms since the epoch), 0 before the first. */
  lastBeatAt = 0;
  #beats?: Promise<void>;
  #stop = new AbortController();

  constructor(agent: Agent, opts: GemNodeOptions) {
    this.agent = agent;
    this.opts = opts;
  }

  get name(): string {
    return this.opts.node;
  }

  get ip(): string {
    return this.agent.ip;
  }

  /** One heartbeat as the gem's `heartbeat` command writes it (only while consul runs). */
  async beat(): Promise<void> {
    if (!this.agent.running) return;
    const dirs = this.opts.server ? ["servers", "agents"] : ["agents"];
    const body = new TextEncoder().encode(this.agent.ip);
    for (const dir of dirs) {
      const now = new Date();
      const key = `${dir}/${gemStamp(now)}-${this.opts.node}`;
      await this.opts.registry.put(key, body);
      this.written.push(key);
      this.lastBeatAt = now.getTime();
      // purge!: every key of the directory below the first still-live stamp
      const min = `${dir}/${
        gemStamp(new Date(Date.now() - (this.opts.expirySeconds - 1) * 1000))
      }-`;
      const listing = await this.opts.registry.list(`${dir}/`);
      await Promise.all(
        listing.objects.filter((o) => o.key < min).map((o) => this.opts.registry.delete(o.key)),
      );
    }
  }

  /** Starts the heartbeat loop (the gem's `while true; heartbeat; sleep N; done`). */
  startBeats(): void {
    if (this.#beats) return;
    const signal = this.#stop.signal;
    this.#beats = (async () => {
      while (!signal.aborted) {
        await this.beat().catch((err) => console.error(`gem heartbeat failed: ${err}`));
        await new Promise((r) => setTimeout(r, this.opts.ticksMs));
      }
    })();
  }

  /** Stops heartbeating (waits for the loop to end). */
  async stopBeats(): Promise<void> {
    this.#stop.abort();
    await this.#beats;
  }

  /** Stops the beats and consul (SIGKILL: the machine is gone), keeps nothing. */
  async dispose(): Promise<void> {
    await this.stopBeats();
    await this.agent.dispose(0);
  }
}

/** Starts a gem node: consul as the gem starts it, the gem's join, then its heartbeats. */
export async function startGemNode(opts: GemNodeOptions): Promise<GemNode> {
  const gemArgs = opts.server ? ["-server", ...(opts.bootstrap ? ["-bootstrap"] : [])] : [];
  const agent = await startAgent({
    server: false, // the harness adds nothing of its own for the role: the gem's args decide
    node: opts.node,
    extraArgs: gemArgs,
  });
  const gem = new GemNode(agent, opts);
  try {
    if (opts.join) {
      const out = await new Deno.Command(consulBin(), {
        args: ["join", `-http-addr=${agent.httpAddr}`, opts.join],
        stdout: "piped",
        stderr: "piped",
      }).output();
      if (!out.success) {
        throw new Error(
          `consul join ${opts.join} failed: ${new TextDecoder().decode(out.stderr).trim()}`,
        );
      }
    }
    gem.startBeats();
    return gem;
  } catch (err) {
    await gem.dispose();
    throw err;
  }
}

/** The gem's `pick_joining_host`: the oldest live heartbeat's body (members sorted by time). */
export async function gemPickJoin(
  registry: Registry,
  dir: "servers" | "agents",
  expirySeconds: number,
): Promise<string | undefined> {
  const min = `${dir}/${gemStamp(new Date(Date.now() - (expirySeconds - 1) * 1000))}-`;
  const live = (await registry.list(`${dir}/`)).objects.map((o) => o.key).filter((k) => k >= min)
    .sort();
  if (live.length === 0) return undefined;
  const body = await registry.get(live[0], 256);
  return body && new TextDecoder().decode(body);
}
