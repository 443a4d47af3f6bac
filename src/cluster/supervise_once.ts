/**
 * One run of consul in one mode (`superviseOnce`, for `runNode` in node.ts): consul started
 * and supervised with its hung-agent watchdog, and beside it the loops of a running node —
 * the starting record, heartbeat, joins, watching for a place (a client), the holder record
 * and quorum watch (a server), catalog cleaning — until the node is stopped, promoted, steps
 * down or recovers a lost quorum. A leaving client removes its heartbeat.
 */
import { agentCommand, consulDataDir, serverJoinsOnly } from "../consul/agent_args.ts";
import { warnLeaveOverride, writeAgentConfig } from "../consul/agent_config.ts";
import { STOP_TIMEOUT_MS, superviseConsul } from "../consul/supervisor.ts";
import { ConsulError, ConsulUnreachableError, describe } from "../errors.ts";
import { liveMembers, type Member } from "../registry/heartbeats.ts";
import { parseJoinAddress } from "../registry/layout.ts";
import { announceAddress } from "./announce.ts";
import { cleanCatalog } from "./catalog_clean.ts";
import type { HeldPlace } from "./places.ts";
import { heartbeatLoop, waitForAgent } from "./beat.ts";
import { joinAll, stayJoined } from "./join.ts";
import { type Announcing, holderLoop, type PlaceLost, startAnnouncing } from "./holder.ts";
import { watchForPlace } from "./promote.ts";
import { type Recovery, watchQuorum } from "./quorum.ts";
import { removeReplacedVoter, type Replaced } from "./replace.ts";
import { prunePlaceless } from "./placeless.ts";
import { RECOVER_AFTER_EXPIRIES } from "./recovery.ts";
import { type Mode, writeMode, writePlace } from "./state.ts";
import { AGENT_POLL_MS, NODE_BACKOFF, type NodeDeps, type NodeOptions } from "./node_options.ts";

/**
 * Removing a replaced holder's raft voter: tries 1 s apart — a few by a promoted client (its
 * agent knows a leader; its claim must not wait long for its server), more by a new server
 * (it may not know a leader yet).
 */
const REMOVE_TRIES = { attempts: 30, intervalMs: 1000 };

const REMOVE_TRIES_PROMOTED = { attempts: 3, intervalMs: 1000 };

/** A starting holder's records stop after this many expiry windows without an answer. */
const STARTING_RECORDS_EXPIRIES = 5;

/** A stepping-down server waits this long for its graceful leave. */
const LEAVE_TIMEOUT_MS = 15_000;

/** How one run of consul ended, and what the node does next (node.ts). */
export interface SupervisedRun {
  code: number;
  /** A client took this place: consul runs again as a server. */
  promoted?: HeldPlace;
  /**
   * The promoted place's starting records, written from the claim on (I1): the next run
   * stops them once its own are written, so no gap while consul stops and starts again.
   */
  announcing?: Announcing;
  lost?: PlaceLost;
  recovery?: Recovery;
}

/**
 * Runs consul in one mode with its loops until the node is stopped, or (a client) until it
 * took a server place: then consul is stopped like on SIGTERM (a client leaves) and
 * `promoted` is set. `carried`: the starting records of the claim that promoted this node,
 * stopped once this run writes its own.
 */
export async function superviseOnce(
  opts: NodeOptions,
  deps: NodeDeps,
  mode: Mode,
  watchPlaces: boolean,
  known?: Member[],
  held?: HeldPlace,
  replaced?: Replaced,
  carried?: Announcing,
): Promise<SupervisedRun> {
  const { log, registry, stop } = deps;
  const iteration = new AbortController();
  const onStop = () => iteration.abort(stop.reason);
  if (stop.aborted) onStop();
  else stop.addEventListener("abort", onStop, { once: true });
  let promoted: HeldPlace | undefined;
  let announcing: Announcing | undefined;
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
    const startingRecords = (address: string, place: HeldPlace, moreMs = 0): Announcing =>
      startAnnouncing({
        node: opts.node,
        address,
        held: place,
        ticksMs: opts.ticksSeconds * 1000,
        consulDataDir: consulDataDir(opts.dataDir, "server"),
        maxMs: STARTING_RECORDS_EXPIRIES * opts.expirySeconds * 1000 + moreMs,
      }, { registry: registry!, sleep: deps.sleep, log: log.child("place") });
    let early: Announcing | undefined;
    const background = (async () => {
      if (!registry) return;
      // Polled often: the first heartbeat and the first join read wait for this (a cold
      // cluster forms only once its servers have announced themselves).
      const earlyAddress = parseJoinAddress(opts.advertise ?? "") ?? parseJoinAddress(opts.bind);
      if (server && held && earlyAddress !== undefined) early = startingRecords(earlyAddress, held);
      // The promotion's records hand over to this run's, or (no address from the flags) run
      // on until consul answers; every stop is awaited when the run ends.
      if (early) carried?.stop();
      const answered = await waitForAgent(deps.consul, deps.sleep, loops.signal, AGENT_POLL_MS);
      early?.stop(); // it stops at once, not awaited here: the first heartbeat does not wait
      carried?.stop();
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
              if (!place?.place) return;
              // I1: records from the claim on — stopping this client's consul and starting
              // it again as a server can take longer than the patience of the other nodes.
              // Bounded like a start, plus the longest stop of this client's consul.
              announcing = startingRecords(address, place.place, STOP_TIMEOUT_MS);
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
            servers: opts.servers,
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
        // I1: the leader removes dead raft servers that hold no place (a new cluster joined
        // by a client that still saw the old servers alive).
        server && held
          ? prunePlaceless(
            { node: opts.node, ticksMs, expirySeconds: opts.expirySeconds },
            { registry, consul: deps.consul, sleep: deps.sleep, log: log.child("place") },
            loops.signal,
          )
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
    const stopped = early?.stop();
    await background;
    // nothing outlives this run but a promotion's records, which the next run stops
    await stopped;
    if (!promoted) await announcing?.stop();
    if (!server && registry && lastKeys.length > 0) {
      // A client that leaves gracefully also leaves the registry; a server keeps its place.
      await Promise.all(lastKeys.map((k) => registry.delete(k))).catch((err) =>
        log.warn("could not remove this client's heartbeat", { error: describe(err) })
      );
    }
    return { code, promoted, announcing: promoted ? announcing : undefined, lost, recovery };
  } finally {
    await carried?.stop();
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
