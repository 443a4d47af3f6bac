/**
 * A node's life under `run` and `direct_run`: decide the mode (race-free, retried until it
 * works or the node is stopped), start and supervise consul, announce at once and then every
 * tick, join and stay joined, take a server place that needs a holder (a client of `run`)
 * and restart consul as a server, and on stop leave: a client removes its heartbeat, a
 * server keeps its place. Resolves with consul's exit code.
 *
 * Every collaborator is a parameter (spawn, clock, sleep, random, registry, consul client,
 * stop signal, log), like `elect/watch.ts`, so the whole life is tested without a process
 * and without waiting. `commands/run.ts` wires the real ones.
 */
import { agentCommand, consulDataDir, serverJoinsOnly } from "../consul/agent_args.ts";
import { warnLeaveOverride, writeAgentConfig } from "../consul/agent_config.ts";
import type { ConsulClient } from "../consul/client.ts";
import type { ConsulProcess, LineHandler } from "../consul/process.ts";
import { superviseConsul } from "../consul/supervisor.ts";
import type { ConsulVersion } from "../consul/version.ts";
import {
  ConsulError,
  ConsulStartError,
  ConsulUnreachableError,
  describe,
  UsageError,
} from "../errors.ts";
import type { Logger } from "../log.ts";
import { liveMembers, type Member } from "../registry/heartbeats.ts";
import { parseJoinAddress } from "../registry/layout.ts";
import type { Registry } from "../registry/registry.ts";
import type { Sleep } from "../util/backoff.ts";
import { retryTransient } from "../util/retry.ts";
import { announceAddress } from "./announce.ts";
import { cleanCatalog } from "./catalog_clean.ts";
import { releaseClaim } from "./claim.ts";
import { decisionWarnings } from "./server_warnings.ts";
import type { HeldPlace } from "./places.ts";
import { heartbeatLoop, waitForAgent } from "./beat.ts";
import { joinAll, stayJoined } from "./join.ts";
import { decideMode, type ModeOptions } from "./mode.ts";
import { announceStarting, holderLoop, type PlaceLost } from "./holder.ts";
import { watchForPlace } from "./promote.ts";
import { prepareRecovery, type Recovery, watchQuorum } from "./quorum.ts";
import { removeReplacedVoter, type Replaced } from "./replace.ts";
import { RECOVER_AFTER_EXPIRIES, type ServersLostPolicy } from "./recovery.ts";
import { migrateClientDataDir, type Mode, readMode, writeMode, writePlace } from "./state.ts";

/** Backoff of the mode decision's retries and of consul's restarts. */
export const NODE_BACKOFF = { initialMs: 1000, maxMs: 30_000 };
/** How often the node asks whether its consul answers yet, at start. */
export const AGENT_POLL_MS = 50;
/** Upper bound of the advisory settle delay of the mode decision. */
export const SETTLE_MS = 5000;

export interface NodeOptions {
  node: string;
  /**
   * "decide": decide the mode from the registry at start (`run`; a client may later be
   * promoted). "recorded": run the mode recorded in the data dir (`direct_run`).
   */
  modeFrom: "decide" | "recorded";
  /** Desired number of servers. */
  servers: number;
  expirySeconds: number;
  ticksSeconds: number;
  dataDir: string;
  advisory: boolean;
  /** The version of the consul binary `spawn` starts. */
  version: ConsulVersion;
  bind: string;
  advertise?: string;
  /** consul `-client`, only when given. */
  client?: string;
  configDir?: string;
  datacenter?: string;
  /** Everything after `--`, passed to consul unchanged. */
  consulArgs: readonly string[];
  gossipKey?: string;
  token?: string;
  /**
   * Seconds a live consul's HTTP API may stay silent (after it answered once) before it is
   * killed and started again. Default: max(30, 3 ticks).
   */
  hangTimeoutSeconds?: number;
  /** docs/recovery.md: auto-recovery, the I5 policy and the wait W (defaults: on, wait, 5 -e). */
  recovery?: RecoveryConfig;
}

export interface RecoveryConfig {
  autoRecover: boolean;
  serversLost: ServersLostPolicy;
  recoverAfterSeconds: number;
}

/** A started consul (reporting what its start found, e.g. a leftover, is the spawner's job). */
export type NodeConsul = ConsulProcess;

/** A starting holder's records stop after this many expiry windows without an answer. */
const STARTING_RECORDS_EXPIRIES = 5;
/** A stepping-down server waits this long for its graceful leave. */
const LEAVE_TIMEOUT_MS = 15_000;
/**
 * Removing a replaced holder's raft voter: tries 1 s apart — a few by a promoted client (its
 * agent knows a leader; its claim must not wait long for its server), more by a new server
 * (it may not know a leader yet).
 */
const REMOVE_TRIES = { attempts: 30, intervalMs: 1000 };
const REMOVE_TRIES_PROMOTED = { attempts: 3, intervalMs: 1000 };

export interface NodeDeps {
  /** Starts `consul <args>` with the given output handler. */
  spawn: (args: readonly string[], onLine: LineHandler) => Promise<NodeConsul>;
  consul: Pick<
    ConsulClient,
    | "self"
    | "members"
    | "leader"
    | "join"
    | "raftConfiguration"
    | "leave"
    | "catalogNode"
    | "catalogDeregister"
    | "raftRemovePeer"
  >;
  /** The registry; required when `modeFrom` is "decide". Without it: no heartbeat, no join. */
  registry?: Registry;
  sleep: Sleep;
  random: () => number;
  /** Milliseconds clock (Date.now). */
  now: () => number;
  /** Aborts to stop the node; its reason is the signal received ("SIGINT" or "SIGTERM"). */
  stop: AbortSignal;
  log: Logger;
}

/** The mode decision's options, shared with `set_mode`. */
export function modeOptions(
  o:
    & Pick<NodeOptions, "node" | "servers" | "expirySeconds" | "dataDir" | "advisory">
    & { recovery?: RecoveryConfig },
): ModeOptions {
  return {
    node: o.node,
    servers: o.servers,
    expirySeconds: o.expirySeconds,
    dataDir: o.dataDir,
    advisory: o.advisory,
    settleMs: SETTLE_MS,
    ...o.recovery,
  };
}

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
  for (;;) {
    const r = await superviseOnce(
      opts,
      deps,
      mode,
      watchPlaces && mode === "agent",
      known,
      mode === "server" ? held : undefined,
      mode === "server" ? replaced : undefined,
    ).catch(async (err) => {
      if (err instanceof ConsulStartError && !err.ranBefore && claimed && registry) {
        await releaseClaim(registry, claimed, log);
        await writePlace(opts.dataDir, undefined).catch(() => {});
      }
      throw err;
    });
    claimed = undefined;
    replaced = undefined;
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
      return r.code;
    }
    mode = "server";
    held = r.promoted;
  }
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

/**
 * Runs consul in one mode with its loops until the node is stopped, or (a client) until it
 * took a server place: then consul is stopped like on SIGTERM (a client leaves) and
 * `promoted` is true.
 */
async function superviseOnce(
  opts: NodeOptions,
  deps: NodeDeps,
  mode: Mode,
  watchPlaces: boolean,
  known?: Member[],
  held?: HeldPlace,
  replaced?: Replaced,
): Promise<{ code: number; promoted?: HeldPlace; lost?: PlaceLost; recovery?: Recovery }> {
  const { log, registry, stop } = deps;
  const iteration = new AbortController();
  const onStop = () => iteration.abort(stop.reason);
  if (stop.aborted) onStop();
  else stop.addEventListener("abort", onStop, { once: true });
  let promoted: HeldPlace | undefined;
  let lost: PlaceLost | undefined;
  let recovery: Recovery | undefined;
  try {
    const server = mode === "server";
    const servers = known ??
      (registry
        ? await liveMembers(registry, "servers", opts.expirySeconds, log).catch((err) => {
          log.warn("cannot read servers for -retry-join", { error: describe(err) });
          return [];
        })
        : []);
    const retryJoin = servers.filter((m) => m.node !== opts.node).map((m) => m.address);
    // -s 1 while another server is live (the gem's, a pinned one): join it, never bootstrap.
    const joinOnly = server && serverJoinsOnly(opts.servers, retryJoin.length);
    if (joinOnly) {
      log.info("another server is live: starting as a server that joins it (no bootstrap)", {
        servers: servers.filter((m) => m.node !== opts.node).map((m) => m.node).join(","),
      });
    }
    const cmd = agentCommand({
      mode: server ? "server" : "client",
      servers: opts.servers,
      joinOnly,
      version: opts.version,
      bind: opts.bind,
      advertise: opts.advertise,
      client: opts.client,
      node: opts.node,
      dataDir: opts.dataDir,
      configDir: opts.configDir,
      datacenter: opts.datacenter,
      retryJoin,
      retryIntervalSeconds: Math.min(30, opts.ticksSeconds),
      extraArgs: opts.consulArgs,
      gossipKey: opts.gossipKey,
      token: opts.token,
    });

    await writeAgentConfig(cmd.configFile);
    if (server && opts.configDir !== undefined) {
      await warnLeaveOverride(opts.configDir, (m) => log.warn(m));
    }
    const loops = new AbortController();
    const supervised = superviseConsul({
      spawn: (onLine) => deps.spawn(cmd.args, onLine),
      log: log.child("supervisor"),
      sleep: deps.sleep,
      random: deps.random,
      now: deps.now,
      signal: iteration.signal,
      restartBackoff: NODE_BACKOFF,
      watchdog: watchdogOf(opts, deps),
    });

    let lastKeys: string[] = [];
    const voterDeps = { consul: deps.consul, sleep: deps.sleep, log: log.child("place") };
    // A holder announces itself while its consul starts (I1): see announceStarting.
    const starting = new AbortController();
    let early: Promise<void> = Promise.resolve();
    const background = (async () => {
      if (!registry) return;
      // Polled often: the first heartbeat and the first join read wait for this (a cold
      // cluster forms only once its servers have announced themselves).
      const earlyAddress = parseJoinAddress(opts.advertise ?? "") ?? parseJoinAddress(opts.bind);
      early = server && held && earlyAddress !== undefined
        ? announceStarting(
          {
            node: opts.node,
            address: earlyAddress,
            held,
            ticksMs: opts.ticksSeconds * 1000,
            consulDataDir: consulDataDir(opts.dataDir, "server"),
            maxMs: STARTING_RECORDS_EXPIRIES * opts.expirySeconds * 1000,
          },
          { registry, sleep: deps.sleep, log: log.child("place") },
          starting.signal,
        )
        : Promise.resolve();
      const answered = await waitForAgent(deps.consul, deps.sleep, loops.signal, AGENT_POLL_MS);
      starting.abort(); // it stops at once; not awaited, so the first heartbeat is not delayed
      early.catch(() => {});
      if (!answered) return;
      let address: string;
      try {
        address = announceAddress(opts, await deps.consul.self({ signal: loops.signal }));
      } catch (err) {
        log.error(describe(err));
        return;
      }
      const ticksMs = opts.ticksSeconds * 1000;
      const backoff = { initialMs: 1000, maxMs: Math.min(30_000, ticksMs) };
      await Promise.all([
        // The -retry-join addresses once more through the API: consul names no address it
        // could not join when another one worked, and a handshake refused for want of our
        // gossip key (a rogue heartbeat in the registry) must be named in our log.
        joinAll(retryJoin, deps.consul, log.child("join"), loops.signal),
        heartbeatLoop({
          node: opts.node,
          address,
          server,
          ticksMs,
          expirySeconds: opts.expirySeconds,
          purgeEvery: server ? 10 : 0,
          backoff,
        }, {
          registry,
          consul: deps.consul,
          sleep: deps.sleep,
          random: deps.random,
          now: () => new Date(deps.now()),
          log: log.child("heartbeat"),
        }, loops.signal).then((k) => lastKeys = k),
        watchPlaces
          ? watchForPlace(
            {
              node: opts.node,
              servers: opts.servers,
              expirySeconds: opts.expirySeconds,
              intervalMs: Math.max(ticksMs, opts.expirySeconds * 500),
              ...opts.recovery,
            },
            { registry, consul: deps.consul, sleep: deps.sleep, log: log.child("place") },
            loops.signal,
          )
            .then(async (place) => {
              if (!place) return;
              // I1: the old holder's voter goes before this node's consul runs as a server.
              if (place.replaced) {
                await removeReplacedVoter(
                  place.replaced,
                  voterDeps,
                  REMOVE_TRIES_PROMOTED,
                  loops.signal,
                );
              }
              await writeMode(opts.dataDir, "server");
              await writePlace(opts.dataDir, place.place);
              log.info(`${place.reason}: restarting consul as a server`);
              promoted = place.place;
              iteration.abort("SIGTERM");
            })
          : Promise.resolve(),
        // A holder writes its record and re-asserts its place every tick (I1), and watches
        // for a lost quorum (I4).
        server && held
          ? holderLoop(
            { node: opts.node, address, held, ticksMs },
            { registry, consul: deps.consul, sleep: deps.sleep, log: log.child("place") },
            loops.signal,
          ).then(async (l) => {
            if (!l) return;
            lost = l;
            // Leave raft before running as a client (I1): a server that stops without leaving
            // keeps its voter entry, and autopilot never removes it while the node (now a
            // client under the same name) is alive: one voter too many, for good.
            await deps.consul.leave({ signal: AbortSignal.timeout(LEAVE_TIMEOUT_MS) }).catch(
              (err) =>
                log.warn("could not leave raft before stepping down", { error: describe(err) }),
            );
            iteration.abort("SIGTERM");
          })
          : Promise.resolve(),
        server && replaced
          ? removeReplacedVoter(replaced, voterDeps, REMOVE_TRIES, loops.signal)
          : Promise.resolve(),
        server && held
          ? watchQuorum({
            node: opts.node,
            address,
            ticksMs,
            expirySeconds: opts.expirySeconds,
            waitSeconds: opts.recovery?.recoverAfterSeconds ??
              RECOVER_AFTER_EXPIRIES * opts.expirySeconds,
            autoRecover: opts.recovery?.autoRecover ?? true,
            dataDir: opts.dataDir,
          }, {
            registry,
            consul: deps.consul,
            sleep: deps.sleep,
            now: deps.now,
            log: log.child("quorum"),
          }, loops.signal).then((r) => {
            if (!r) return;
            recovery = r;
            iteration.abort("SIGTERM");
          })
          : Promise.resolve(),
        // A node back with a wiped data dir: its old catalog entry blocks its registration.
        cleanCatalog({ node: opts.node, ticksMs }, {
          consul: deps.consul,
          sleep: deps.sleep,
          log: log.child("catalog"),
        }, loops.signal),
        stayJoined({
          node: opts.node,
          address,
          ticksMs,
          checkMs: Math.min(ticksMs, 5000),
          backoff,
        }, {
          consul: deps.consul,
          readServers: () => liveMembers(registry, "servers", opts.expirySeconds, log),
          sleep: deps.sleep,
          random: deps.random,
          now: deps.now,
          log: log.child("join"),
        }, loops.signal),
      ]);
    })();

    const { code } = await supervised;
    loops.abort();
    starting.abort();
    await background;
    // nothing outlives this run: the starting record's writer (stopped) is awaited too
    await early.catch(() => {});
    if (!server && registry && lastKeys.length > 0) {
      // A client that leaves gracefully also leaves the registry; a server keeps its place.
      await Promise.all(lastKeys.map((k) => registry.delete(k))).catch((err) =>
        log.warn("could not remove this client's heartbeat", { error: describe(err) })
      );
    }
    return { code, promoted, lost, recovery };
  } finally {
    stop.removeEventListener("abort", onStop);
  }
}

/** The hung-consul watchdog of the supervisor: any answer of the agent's HTTP API counts. */
function watchdogOf(opts: NodeOptions, deps: NodeDeps) {
  const hungAfterMs = (opts.hangTimeoutSeconds ?? Math.max(30, 3 * opts.ticksSeconds)) * 1000;
  return {
    hungAfterMs,
    intervalMs: Math.max(250, Math.min(5_000, hungAfterMs / 4)),
    answers: async (signal: AbortSignal) => {
      try {
        await deps.consul.self({ signal });
        return true;
      } catch (err) {
        return err instanceof ConsulError && !(err instanceof ConsulUnreachableError);
      }
    },
  };
}
