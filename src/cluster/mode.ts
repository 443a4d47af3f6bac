/**
 * The mode decision of `run` and `set_mode`: a recorded explicit mode wins; otherwise a
 * server place is claimed race-free when the store honours conditional writes, or (opt-in,
 * --advisory) the gem's advisory rule after a randomised settle delay and a second read.
 *
 * The start path is short (issue 17): the conditional-write probe (skipped while local state
 * remembers its answer, `probe_memo.ts`) goes out beside the registry reads — the listings of
 * `slots/` and `servers/`, then the claim bodies that can decide something beside the live
 * servers' addresses — and only the claim itself waits for both. The live servers read here
 * are returned for `run`'s -retry-join. At one request per round: a client decides after 2
 * rounds, a node that claims a place after 3.
 */
import { RegistryError } from "../errors.ts";
import type { Logger } from "../log.ts";
import {
  freshestPerNode,
  type Heartbeat,
  type Member,
  readHeartbeats,
} from "../registry/heartbeats.ts";
import { type ProbeResult, startProbe } from "../registry/probe.ts";
import type { Registry } from "../registry/registry.ts";
import type { Sleep } from "../util/backoff.ts";
import { claimFromView, type PlaceResult, releaseClaim } from "./claim.ts";
import { readDecisionView } from "./decision_view.ts";
import { advisoryIsServer } from "./places.ts";
import type { ServersLostPolicy } from "./recovery.ts";
import { probeRemembered, readProbeMemo, registryIdentity, writeProbeMemo } from "./probe_memo.ts";
import { type Mode, modeIsExplicit, readMode, readPlace, writeMode, writePlace } from "./state.ts";

/** Present while this node is sending a place claim whose outcome is not yet recorded. */
export const CLAIMING_FILE = "place.claiming";

export const ADVISORY_FLAG = "--advisory";

export function conditionsIgnoredMessage(url: string): string {
  return `registry ${url} ignores conditional writes (If-None-Match: *), so two nodes could ` +
    `both take the same server place: use a store that honours them (AWS S3, MinIO, R2, GCS), ` +
    `or pass ${ADVISORY_FLAG} for the gem's advisory placement`;
}

export interface ModeOptions {
  node: string;
  servers: number;
  expirySeconds: number;
  dataDir: string;
  advisory: boolean;
  /** Upper bound of the advisory settle delay. */
  settleMs: number;
  /** I5 policy, auto-recovery and its wait (docs/recovery.md). */
  serversLost?: ServersLostPolicy;
  autoRecover?: boolean;
  recoverAfterSeconds?: number;
}

export interface ModeDeps {
  registry: Registry;
  log: Logger;
  sleep: Sleep;
  random: () => number;
  /** This node's clock (the probe memo's age). Default: the system clock. */
  now?: () => Date;
}

export interface ModeResult extends PlaceResult {
  explicit: boolean;
  /**
   * The live servers read for the decision, with their join addresses, freshest first (for
   * -retry-join); undefined when the mode was recorded by hand and nothing was read.
   */
  liveServers?: Member[];
  /** Settles (never rejects) when the probe's housekeeping is done: await before closing. */
  settled: Promise<void>;
}

/** Decides (and records) this node's mode. */
export async function decideMode(opts: ModeOptions, deps: ModeDeps): Promise<ModeResult> {
  if (await modeIsExplicit(opts.dataDir)) {
    const mode = await readMode(opts.dataDir);
    if (mode) {
      return {
        mode,
        explicit: true,
        reason: `keeping the recorded mode ${mode} (${opts.dataDir}/mode: set by the gem, by ` +
          `hand or with set_${mode}, not decided by auto-consul)`,
        settled: Promise.resolve(),
      };
    }
  }
  const [held, before, memo, claiming] = await Promise.all([
    readPlace(opts.dataDir),
    readMode(opts.dataDir),
    readProbeMemo(opts.dataDir),
    exists(`${opts.dataDir}/${CLAIMING_FILE}`),
  ]);
  const identity = registryIdentity(deps.registry);
  const now = deps.now ?? (() => new Date());
  const probe = probeRemembered(memo, identity, now()) ? undefined : startProbe(deps.registry);
  const mightHold = held !== undefined || before === "server" || claiming;
  let probed: ProbeResult;
  let view: Awaited<ReturnType<typeof readDecisionView>>;
  try {
    [probed, view] = await Promise.all([
      probe?.result ?? { honoured: true },
      readDecisionView(deps.registry, { ...opts, mightHold }, deps.log),
    ]);
  } catch (err) {
    await probe?.settled;
    throw err;
  }
  const memoWritten = probe && probed.honoured
    ? writeProbeMemo(opts.dataDir, {
      registry: identity,
      honoured: true,
      checkedAt: now().toISOString(),
    }).catch((err) =>
      deps.log.debug("cannot remember the probe's answer", { error: (err as Error).message })
    )
    : undefined;
  const settled = Promise.all([probe?.settled, memoWritten]).then(() => {});
  let result: PlaceResult;
  try {
    if (probed.honoured) {
      result = await claimFromView(deps.registry, view, {
        ...opts,
        held,
        onClaiming: () => Deno.writeTextFile(`${opts.dataDir}/${CLAIMING_FILE}`, `${opts.node}\n`),
      }, deps.log);
    } else {
      if (!opts.advisory) {
        throw new RegistryError(conditionsIgnoredMessage(deps.registry.url), "conditions-ignored");
      }
      deps.log.warn("the registry ignores conditional writes: advisory placement (--advisory)");
      result = await advisoryMode(opts, deps, view.servers);
    }
    try {
      await writeMode(opts.dataDir, result.mode);
      await writePlace(opts.dataDir, result.place);
    } catch (err) {
      if (result.created && result.place) {
        await releaseClaim(deps.registry, result.place, deps.log);
      }
      throw err;
    }
    await Deno.remove(`${opts.dataDir}/${CLAIMING_FILE}`).catch(() => {});
  } catch (err) {
    await settled;
    throw err;
  }
  return { ...result, explicit: false, liveServers: view.liveServers, settled };
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

function liveNames(beats: Heartbeat[], expirySeconds: number): Set<string> {
  return new Set(freshestPerNode(beats, expirySeconds).map((h) => h.node));
}

async function liveServerNames(deps: ModeDeps, expirySeconds: number): Promise<Set<string>> {
  return liveNames(await readHeartbeats(deps.registry, "servers", deps.log), expirySeconds);
}

/** The gem's rule with -bootstrap-expect, a randomised settle delay and a second read. */
async function advisoryMode(
  opts: ModeOptions,
  deps: ModeDeps,
  servers: Heartbeat[],
): Promise<PlaceResult> {
  const first = liveNames(servers, opts.expirySeconds);
  if (!advisoryIsServer(opts.node, opts.servers, first)) {
    return {
      mode: "agent",
      reason: `${first.size} live servers seen (want ${opts.servers}): client`,
    };
  }
  await deps.sleep(Math.round(deps.random() * opts.settleMs));
  const second = await liveServerNames(deps, opts.expirySeconds);
  const mode: Mode = advisoryIsServer(opts.node, opts.servers, second) ? "server" : "agent";
  return {
    mode,
    reason: `advisory: ${second.size} live servers seen after settling (want ${opts.servers})`,
  };
}
