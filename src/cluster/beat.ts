/**
 * The heartbeat loop of `run`: the first heartbeat as soon as the local agent answers, then
 * one every tick, each only while the agent answers (like the gem's heartbeat, which exits 1
 * when consul is not running): a server whose consul is down must not keep its place alive.
 * Steady-state cost: one PUT per directory written and one DELETE of the previous key; no LIST
 * (the previous keys are remembered). Failures are logged and retried with backoff; the loop
 * never exits on its own.
 */
import type { ConsulClient } from "../consul/client.ts";
import { describe } from "../errors.ts";
import type { Logger } from "../log.ts";
import { purgeExpired, writeHeartbeat } from "../registry/heartbeats.ts";
import type { HeartbeatDir } from "../registry/layout.ts";
import type { Registry } from "../registry/registry.ts";
import { backoffDelay, type Sleep } from "../util/backoff.ts";

export interface BeatOptions {
  node: string;
  /** The join address to announce (already validated). */
  address: string;
  server: boolean;
  ticksMs: number;
  expirySeconds: number;
  /** Purge expired heartbeats every this many beats (0: never). Servers only. */
  purgeEvery: number;
  backoff: { initialMs: number; maxMs: number };
  onBeat?: (keys: string[]) => void;
}

export interface BeatDeps {
  registry: Registry;
  consul: Pick<ConsulClient, "self">;
  sleep: Sleep;
  random: () => number;
  now: () => Date;
  log: Logger;
}

/** Waits (bounded by `signal`) until the agent's HTTP API answers. True when it did. */
export async function waitForAgent(
  consul: Pick<ConsulClient, "self">,
  sleep: Sleep,
  signal: AbortSignal,
  intervalMs = 250,
): Promise<boolean> {
  while (!signal.aborted) {
    try {
      await consul.self({ signal });
      return true;
    } catch {
      await sleep(intervalMs, signal);
    }
  }
  return false;
}

export async function heartbeatLoop(
  opts: BeatOptions,
  deps: BeatDeps,
  signal: AbortSignal,
): Promise<string[]> {
  const { log } = deps;
  const dirs: HeartbeatDir[] = opts.server ? ["servers", "agents"] : ["agents"];
  let previous: string[] | undefined;
  let failures = 0;
  let beats = 0;
  if (!await waitForAgent(deps.consul, deps.sleep, signal)) return previous ?? [];
  while (!signal.aborted) {
    try {
      await deps.consul.self({ signal });
      const w = await writeHeartbeat(deps.registry, {
        node: opts.node,
        address: opts.address,
        dirs,
        now: deps.now(),
        previous: previous ?? [],
      }, log);
      previous = w.keys;
      if (failures > 0) {
        log.info("heartbeats resumed", { after: failures });
      }
      failures = 0;
      beats++;
      log.debug("heartbeat written", { keys: w.keys.join(",") });
      opts.onBeat?.(w.keys);
      if (opts.server && opts.purgeEvery > 0 && (beats - 1) % opts.purgeEvery === 0) {
        for (const dir of ["servers", "agents"] as const) {
          const removed = await purgeExpired(deps.registry, dir, opts.expirySeconds, log);
          if (removed.length) log.info("purged expired heartbeats", { dir, count: removed.length });
        }
      }
      await deps.sleep(opts.ticksMs, signal);
    } catch (err) {
      if (signal.aborted) break;
      const delay = Math.min(backoffDelay(failures++, opts.backoff, deps.random), opts.ticksMs);
      log.warn("heartbeat failed; retrying", { error: describe(err), retryInMs: delay });
      await deps.sleep(delay, signal);
    }
  }
  return previous ?? [];
}
