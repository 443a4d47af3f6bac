/**
 * A node's life under `run` and `direct_run`: decide the mode (race-free, retried until it
 * works or the node is stopped), start and supervise consul, announce at once and then every
 * tick, join and stay joined, take a server place that needs a holder (a client of `run`)
 * and restart consul as a server, and on stop leave: a client removes its heartbeat, a
 * server keeps its place. Resolves with consul's exit code.
 *
 * Every collaborator is a parameter (spawn, clock, sleep, random, registry, consul client,
 * stop signal, log), like `elect/watch.ts`, so the whole life is tested without a process
 * and without waiting. `commands/run.ts` wires the real ones. The options and collaborators
 * are in node_options.ts; one run of consul in one mode, with its loops, in supervise_once.ts.
 */
import { ConsulStartError, UsageError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Member } from "../registry/heartbeats.ts";
import { retryTransient } from "../util/retry.ts";
import { releaseClaim } from "./claim.ts";
import type { Announcing } from "./holder.ts";
import { decisionWarnings } from "./server_warnings.ts";
import type { HeldPlace } from "./places.ts";
import { decideMode } from "./mode.ts";
import { prepareRecovery } from "./quorum.ts";
import type { Replaced } from "./replace.ts";
import { migrateClientDataDir, type Mode, readMode, writeMode, writePlace } from "./state.ts";
import { modeOptions, NODE_BACKOFF, type NodeDeps, type NodeOptions } from "./node_options.ts";
import { superviseOnce } from "./supervise_once.ts";

/** Runs the node until `deps.stop` aborts; resolves with consul's exit code. */
export async function runNode(opts: NodeOptions, deps: NodeDeps): Promise<number> {
  const { log, registry } = deps;
  await moveOldClientData(opts.dataDir, log);
  let mode: Mode | undefined;
  let explicit = true;
  /** A place claimed by this start: released again if consul cannot start at all. */
  let claimed: HeldPlace | undefined;
  /** The live servers the mode decision read: -retry-join without a second read. */
  let known: Member[] | undefined;
  let held: HeldPlace | undefined;
  /** A stale place taken at start: the old holder's raft voter is removed (I1, replace.ts). */
  let replaced: Replaced | undefined;
  if (opts.modeFrom === "recorded") {
    mode = await readMode(opts.dataDir);
    if (!mode) {
      throw new UsageError(
        `no mode recorded in ${opts.dataDir}/mode: run set_mode, set_server or set_agent first`,
      );
    }
  } else {
    if (!registry) throw new TypeError("deciding the mode needs a registry");
    const decided = await retrying(
      "mode decision",
      () =>
        decideMode(modeOptions(opts), { registry, log, sleep: deps.sleep, random: deps.random }),
      deps,
    );
    if (!decided) return 0; // stopped before deciding: nothing was started
    log.info(decided.reason, { mode: decided.mode });
    for (const w of decisionWarnings(opts, decided)) log.warn(w);
    mode = decided.mode;
    explicit = decided.explicit;
    if (decided.created) claimed = decided.place;
    known = decided.liveServers;
    held = decided.place;
    replaced = decided.replaced;
  }
  // A client promoted to a free or stale server place starts again as a server.
  const watchPlaces = registry !== undefined && opts.modeFrom === "decide" &&
    mode === "agent" && !explicit;
  /** A promotion's starting records, handed to the run that starts consul as a server. */
  let announcing: Announcing | undefined;
  for (;;) {
    const r = await superviseOnce(
      opts,
      deps,
      mode,
      watchPlaces && mode === "agent",
      known,
      mode === "server" ? held : undefined,
      mode === "server" ? replaced : undefined,
      announcing,
    ).catch(async (err) => {
      if (err instanceof ConsulStartError && !err.ranBefore && claimed && registry) {
        await releaseClaim(registry, claimed, log);
        await writePlace(opts.dataDir, undefined).catch(() => {});
      }
      throw err;
    });
    claimed = undefined;
    replaced = undefined;
    announcing = r.announcing;
    known = undefined; // a promoted client reads the servers afresh
    if (r.recovery) {
      const path = await prepareRecovery(opts.dataDir, r.recovery);
      log.error(
        `carrying out quorum recovery plan ${r.recovery.plan.n} (${r.recovery.plan.reason}): ` +
          `consul restarts with ${path} naming ${
            r.recovery.plan.survivors.map((x) => x.node).join(", ")
          }`,
      );
      continue;
    }
    if (r.lost) {
      // I1: another node holds this place now: never two holders. The data dir is kept.
      log.error(
        `server place ${held?.place} was taken by ${r.lost.takenBy ?? "another node"} ` +
          `(epoch ${r.lost.epoch}): stepping down to a client; the raft data in ` +
          `${opts.dataDir}/server is kept`,
      );
      await writeMode(opts.dataDir, "agent");
      await writePlace(opts.dataDir, undefined);
      mode = "agent";
      held = undefined;
      continue;
    }
    if (!r.promoted) {
      log.info("consul exited", { code: r.code });
      return stoppedCode(r.code, mode, deps.stop.aborted, log);
    }
    mode = "server";
    held = r.promoted;
  }
}

/**
 * The exit code of a node that ends: consul's own, except that a server stopped by a signal
 * (Ctrl-C, systemd's stop) exits 0. Consul exits 1 whenever it does not leave on a signal, and a
 * server never leaves (docs/recovery.md, "Safe settings"): that 1 is the design, not a failure.
 * A client that could not leave keeps consul's 1.
 */
export function stoppedCode(code: number, mode: Mode, stopped: boolean, log: Logger): number {
  if (!(stopped && mode === "server" && code === 1)) return code;
  log.info("consul exited 1 as a server does on a signal (it does not leave, by design): exit 0");
  return 0;
}

/** An earlier auto-consul's `<data-dir>/client` becomes the gem's `<data-dir>/agent`, once. */
async function moveOldClientData(dataDir: string, log: Logger): Promise<void> {
  const moved = await migrateClientDataDir(dataDir);
  if (moved === "moved") {
    log.info("moved consul's client data to the gem's layout (same node ID)", {
      from: `${dataDir}/client`,
      to: `${dataDir}/agent`,
    });
  } else if (moved === "both") {
    log.warn("both <data-dir>/client and <data-dir>/agent exist: using agent, client left alone", {
      dataDir,
    });
  }
}

/**
 * Retries `fn` until it works or the node is stopped (then undefined); permanent failures
 * end the node (util/retry.ts, errors.ts classify).
 */
function retrying<T>(what: string, fn: () => Promise<T>, deps: NodeDeps): Promise<T | undefined> {
  return retryTransient(what, fn, { backoff: NODE_BACKOFF }, deps, deps.stop);
}
