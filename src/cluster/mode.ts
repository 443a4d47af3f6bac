/**
 * The mode decision of `run` and `set_mode`: a recorded explicit mode wins; otherwise a
 * server place is claimed race-free when the store honours conditional writes, or (opt-in,
 * --advisory) the gem's advisory rule after a randomised settle delay and a second read.
 */
import { RegistryError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { freshestPerNode, readHeartbeats } from "../registry/heartbeats.ts";
import { probeConditionalWrites } from "../registry/probe.ts";
import type { Registry } from "../registry/registry.ts";
import type { Sleep } from "../util/backoff.ts";
import { type PlaceResult, takePlace } from "./claim.ts";
import { advisoryIsServer } from "./places.ts";
import { type Mode, modeIsExplicit, readMode, readPlace, writeMode, writePlace } from "./state.ts";

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
}

export interface ModeDeps {
  registry: Registry;
  log: Logger;
  sleep: Sleep;
  random: () => number;
}

export interface ModeResult extends PlaceResult {
  explicit: boolean;
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
      };
    }
  }
  const probe = await probeConditionalWrites(deps.registry);
  let result: PlaceResult;
  if (probe.honoured) {
    const [held, before] = await Promise.all([readPlace(opts.dataDir), readMode(opts.dataDir)]);
    result = await takePlace(
      deps.registry,
      { ...opts, held, wasClient: before === "agent" },
      deps.log,
    );
  } else {
    if (!opts.advisory) {
      throw new RegistryError(conditionsIgnoredMessage(deps.registry.url), "conditions-ignored");
    }
    deps.log.warn("the registry ignores conditional writes: advisory placement (--advisory)");
    result = await advisoryMode(opts, deps);
  }
  await writeMode(opts.dataDir, result.mode);
  await writePlace(opts.dataDir, result.place);
  return { ...result, explicit: false };
}

async function liveServerNames(deps: ModeDeps, expirySeconds: number): Promise<Set<string>> {
  const beats = await readHeartbeats(deps.registry, "servers", deps.log);
  return new Set(freshestPerNode(beats, expirySeconds).map((h) => h.node));
}

/** The gem's rule with -bootstrap-expect, a randomised settle delay and a second read. */
async function advisoryMode(opts: ModeOptions, deps: ModeDeps): Promise<PlaceResult> {
  const first = await liveServerNames(deps, opts.expirySeconds);
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
