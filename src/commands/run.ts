/**
 * The gem's mode and run commands: set_server, set_agent, set_mode, run, direct_run.
 * `run` decides the mode (race-free), starts and supervises consul, announces at once and
 * then every tick, joins and keeps re-joining; it exits with consul's exit code when asked
 * to stop (SIGINT/SIGTERM).
 */
import type { Config } from "../cli/config.ts";
import { heartbeatLoop, waitForAgent } from "../cluster/beat.ts";
import { joinAll, stayJoined } from "../cluster/join.ts";
import { watchForPlace } from "../cluster/promote.ts";
import { announceAddress } from "../cluster/announce.ts";
import { decideMode } from "../cluster/mode.ts";
import {
  migrateClientDataDir,
  type Mode,
  readMode,
  writeMode,
  writePlace,
} from "../cluster/state.ts";
import { agentCommand } from "../consul/agent_args.ts";
import { writeAgentConfig } from "../consul/agent_config.ts";
import { checkEncryption } from "../consul/encryption.ts";
import { consulVersion } from "../consul/version.ts";
import { guardOf, spawnConsul } from "../consul/process.ts";
import { superviseConsul } from "../consul/supervisor.ts";
import { describe, UsageError } from "../errors.ts";
import { liveMembers } from "../registry/heartbeats.ts";
import type { Registry } from "../registry/registry.ts";
import { sleep } from "../util/backoff.ts";
import { retryTransient } from "../util/retry.ts";
import type { CommonDeps } from "./dispatch.ts";

const BACKOFF = { initialMs: 1000, maxMs: 30_000 };
/** How often `run` asks whether its consul answers yet, at start. */
const AGENT_POLL_MS = 50;

export async function runFamily(config: Config, deps: CommonDeps): Promise<number> {
  const { log } = deps;
  switch (config.command) {
    case "set_server":
    case "set_agent": {
      const mode: Mode = config.command === "set_server" ? "server" : "agent";
      await writeMode(config.dataDir, mode, true);
      await writePlace(config.dataDir, undefined);
      log.info(`mode set to ${mode}`, { dataDir: config.dataDir });
      return 0;
    }
    case "set_mode": {
      const registry = await deps.openRegistry();
      try {
        const r = await decideMode(modeOptions(config), {
          registry,
          log,
          sleep,
          random: Math.random,
        });
        log.info(r.reason, { mode: r.mode });
        console.log(r.mode);
        return 0;
      } finally {
        registry.close();
      }
    }
    case "run":
    case "direct_run":
      return await run(config, deps);
    default:
      throw new UsageError(`command ${config.command} is not a run command`);
  }
}

function modeOptions(config: Config) {
  return {
    node: config.node,
    servers: config.servers,
    expirySeconds: config.expiry,
    dataDir: config.dataDir,
    advisory: config.advisory,
    settleMs: 5000,
  };
}

/** Stops on SIGINT/SIGTERM: the controller aborts with the signal's name as reason. */
function stopOnSignals(): { controller: AbortController; dispose: () => void } {
  const controller = new AbortController();
  const handlers: [Deno.Signal, () => void][] = (["SIGINT", "SIGTERM"] as const).map((s) => [
    s,
    () => controller.abort(s),
  ]);
  for (const [s, h] of handlers) Deno.addSignalListener(s, h);
  return {
    controller,
    dispose: () => {
      for (const [s, h] of handlers) Deno.removeSignalListener(s, h);
    },
  };
}

/**
 * Retries `fn` until it works or `signal` aborts (then undefined); permanent failures end
 * the command (util/retry.ts, errors.ts classify).
 */
function retrying<T>(
  what: string,
  fn: () => Promise<T>,
  deps: CommonDeps,
  signal: AbortSignal,
): Promise<T | undefined> {
  return retryTransient(what, fn, { backoff: BACKOFF }, {
    log: deps.log,
    sleep,
    random: Math.random,
    now: Date.now,
  }, signal);
}

async function run(config: Config, deps: CommonDeps): Promise<number> {
  const { log } = deps;
  await checkEncryption(
    { ...config, gossipKey: deps.gossipKey, require: config.requireEncryption },
    log,
  );
  const version = await consulVersion(config.consulBin);
  const needsRegistry = config.command === "run" || config.registry !== undefined;
  const registry: Registry | undefined = needsRegistry ? await deps.openRegistry() : undefined;
  const { controller, dispose } = stopOnSignals();
  const stop = controller.signal;
  await moveOldClientData(config.dataDir, log);
  try {
    let mode: Mode | undefined;
    let explicit = true;
    if (config.command === "direct_run") {
      mode = await readMode(config.dataDir);
      if (!mode) {
        throw new UsageError(
          `no mode recorded in ${config.dataDir}/mode: run set_mode, set_server or set_agent first`,
        );
      }
    } else {
      const decided = await retrying(
        "mode decision",
        () =>
          decideMode(modeOptions(config), { registry: registry!, log, sleep, random: Math.random }),
        deps,
        stop,
      );
      if (!decided) return 0; // stopped before deciding: nothing was started
      log.info(decided.reason, { mode: decided.mode });
      mode = decided.mode;
      explicit = decided.explicit;
    }
    // A client promoted to a free or stale server place starts again as a server.
    const watchPlaces = registry !== undefined && config.command === "run" &&
      mode === "agent" && !explicit;
    for (;;) {
      const r = await superviseOnce(config, deps, {
        mode,
        version,
        registry,
        stop,
        watchPlaces: watchPlaces && mode === "agent",
      });
      if (!r.promoted) {
        log.info("consul exited", { code: r.code });
        return r.code;
      }
      mode = "server";
    }
  } finally {
    dispose();
    registry?.close();
  }
}

/** An earlier auto-consul's `<data-dir>/client` becomes the gem's `<data-dir>/agent`, once. */
async function moveOldClientData(dataDir: string, log: CommonDeps["log"]): Promise<void> {
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

interface OnceOptions {
  mode: Mode;
  version: Awaited<ReturnType<typeof consulVersion>>;
  registry?: Registry;
  /** Aborts on SIGINT/SIGTERM, with the signal's name as reason. */
  stop: AbortSignal;
  /** Watch for a server place to take (a client of `run`). */
  watchPlaces: boolean;
}

/**
 * Runs consul in one mode with its loops until it is asked to stop, or (a client) until it
 * took a server place: then consul is stopped like on SIGTERM (a client leaves) and
 * `promoted` is true.
 */
async function superviseOnce(
  config: Config,
  deps: CommonDeps,
  o: OnceOptions,
): Promise<{ code: number; promoted: boolean }> {
  const { log } = deps;
  const { registry, mode } = o;
  const iteration = new AbortController();
  const onStop = () => iteration.abort(o.stop.reason);
  if (o.stop.aborted) onStop();
  else o.stop.addEventListener("abort", onStop, { once: true });
  let promoted = false;
  try {
    const server = mode === "server";
    const servers = registry
      ? await liveMembers(registry, "servers", config.expiry, log).catch((err) => {
        log.warn("cannot read servers for -retry-join", { error: describe(err) });
        return [];
      })
      : [];
    const retryJoin = servers.filter((m) => m.node !== config.node).map((m) => m.address);
    const cmd = agentCommand({
      mode: server ? "server" : "client",
      servers: config.servers,
      version: o.version,
      bind: config.bind,
      advertise: config.advertise,
      client: config.client,
      node: config.node,
      dataDir: config.dataDir,
      configDir: config.configDir,
      datacenter: config.datacenter,
      retryJoin,
      retryIntervalSeconds: Math.min(30, config.ticks),
      extraArgs: config.consulArgs,
      gossipKey: deps.gossipKey,
      token: deps.token,
    });

    await writeAgentConfig(cmd.configFile);
    const loops = new AbortController();
    let guardTold = false;
    const supervised = superviseConsul({
      spawn: async (onLine) => {
        const child = await spawnConsul({
          bin: config.consulBin,
          args: cmd.args,
          pidFile: `${config.dataDir}/consul.pid`,
          onLine,
        });
        if (child.leftover?.kind === "stopped") {
          log.warn("stopped a consul left over from an earlier run", { pid: child.leftover.pid });
        }
        if (!guardTold) {
          guardTold = true;
          const g = await guardOf(child);
          log[g.level](g.message);
        }
        return child;
      },
      log: log.child("supervisor"),
      sleep,
      random: Math.random,
      signal: iteration.signal,
      restartBackoff: BACKOFF,
    });

    let lastKeys: string[] = [];
    const background = (async () => {
      if (!registry) return;
      // Polled often: the first heartbeat and the first join read wait for this (a cold
      // cluster forms only once its servers have announced themselves).
      if (!await waitForAgent(deps.consul, sleep, loops.signal, AGENT_POLL_MS)) return;
      let address: string;
      try {
        address = announceAddress(config, await deps.consul.self({ signal: loops.signal }));
      } catch (err) {
        log.error(describe(err));
        return;
      }
      const ticksMs = config.ticks * 1000;
      const backoff = { initialMs: 1000, maxMs: Math.min(30_000, ticksMs) };
      await Promise.all([
        // The -retry-join addresses once more through the API: consul names no address it
        // could not join when another one worked, and a handshake refused for want of our
        // gossip key (a rogue heartbeat in the registry) must be named in our log.
        joinAll(retryJoin, deps.consul, log.child("join"), loops.signal),
        heartbeatLoop({
          node: config.node,
          address,
          server,
          ticksMs,
          expirySeconds: config.expiry,
          purgeEvery: server ? 10 : 0,
          backoff,
        }, {
          registry,
          consul: deps.consul,
          sleep,
          random: Math.random,
          now: () => new Date(),
          log: log.child("heartbeat"),
        }, loops.signal).then((k) => lastKeys = k),
        o.watchPlaces
          ? watchForPlace(
            {
              node: config.node,
              servers: config.servers,
              expirySeconds: config.expiry,
              intervalMs: Math.max(ticksMs, config.expiry * 500),
            },
            { registry, consul: deps.consul, sleep, log: log.child("place") },
            loops.signal,
          )
            .then(async (place) => {
              if (!place) return;
              await writeMode(config.dataDir, "server");
              await writePlace(config.dataDir, place.place);
              log.info(`${place.reason}: restarting consul as a server`);
              promoted = true;
              iteration.abort("SIGTERM");
            })
          : Promise.resolve(),
        stayJoined({
          node: config.node,
          address,
          ticksMs,
          checkMs: Math.min(ticksMs, 5000),
          backoff,
        }, {
          consul: deps.consul,
          readServers: () => liveMembers(registry, "servers", config.expiry, log),
          sleep,
          random: Math.random,
          now: () => Date.now(),
          log: log.child("join"),
        }, loops.signal),
      ]);
    })();

    const { code } = await supervised;
    loops.abort();
    await background;
    if (!server && registry && lastKeys.length > 0) {
      // A client that leaves gracefully also leaves the registry; a server keeps its place.
      await Promise.all(lastKeys.map((k) => registry.delete(k))).catch((err) =>
        log.warn("could not remove this client's heartbeat", { error: describe(err) })
      );
    }
    return { code, promoted };
  } finally {
    o.stop.removeEventListener("abort", onStop);
  }
}
