/**
 * The gem's mode commands: `set_server` and `set_agent` record a mode by hand (`run` then
 * respects it); `set_mode` decides it from the registry as `run` would and prints it.
 *
 * A server mode set by hand (or kept) holds no place: its warnings say so, and, when a registry
 * is given, how many other servers are live already (a node beyond `-s` makes more servers than
 * the places allow). That read is best effort: the mode is recorded whatever the registry says.
 */
import type { Config } from "../cli/config.ts";
import { decideMode } from "../cluster/mode.ts";
import { modeOptions } from "../cluster/node_options.ts";
import { decisionWarnings } from "../cluster/server_warnings.ts";
import { type Mode, writeMode, writePlace } from "../cluster/state.ts";
import { describe } from "../errors.ts";
import type { Logger } from "../log.ts";
import { freshestPerNode, readHeartbeats } from "../registry/heartbeats.ts";
import type { Registry } from "../registry/registry.ts";
import { sleep } from "../util/backoff.ts";

export interface SetModeDeps {
  log: Logger;
  openRegistry: () => Promise<Registry>;
}

/** How long a mode command waits for the registry's live servers, for its warnings only. */
const WARNING_READ_MS = 5_000;

/** `set_server` / `set_agent`: the mode set by hand; any place held is forgotten. */
export async function setModeByHand(
  config: Pick<Config, "dataDir" | "node" | "servers" | "expiry" | "registry">,
  mode: Mode,
  deps: SetModeDeps,
): Promise<number> {
  const { log } = deps;
  await writeMode(config.dataDir, mode, true);
  await writePlace(config.dataDir, undefined);
  log.info(`mode set to ${mode}`, { dataDir: config.dataDir });
  const liveServers = mode === "server" && config.registry
    ? await liveServersForWarnings(deps, config.expiry)
    : undefined;
  for (const w of decisionWarnings(config, { mode, explicit: true, liveServers })) log.warn(w);
  return 0;
}

/** `set_mode`: decides (and records) the mode and prints it. */
export async function setModeCommand(config: Config, deps: SetModeDeps): Promise<number> {
  const { log } = deps;
  const registry = await deps.openRegistry();
  try {
    const r = await decideMode(
      modeOptions({ ...config, expirySeconds: config.expiry }),
      { registry, log, sleep, random: Math.random },
    );
    log.info(r.reason, { mode: r.mode });
    // a recorded server mode was not decided from the registry: read its live servers now
    const liveServers = r.explicit && r.mode === "server"
      ? await liveServersForWarnings(
        { log, openRegistry: () => Promise.resolve(registry) },
        config.expiry,
        false,
      )
      : r.liveServers;
    for (const w of decisionWarnings(config, { ...r, liveServers })) log.warn(w);
    console.log(r.mode);
    await r.settled; // the probe key's deletion, before the registry closes
    return 0;
  } finally {
    registry.close();
  }
}

/**
 * The live servers of the registry, for warnings only: undefined (and a debug line) when the
 * registry cannot be read within WARNING_READ_MS. `close` closes the registry once read.
 */
async function liveServersForWarnings(
  deps: SetModeDeps,
  expirySeconds: number,
  close = true,
): Promise<{ node: string }[] | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), WARNING_READ_MS);
  });
  const read = (async () => {
    const registry = await deps.openRegistry();
    try {
      return freshestPerNode(await readHeartbeats(registry, "servers", deps.log), expirySeconds);
    } finally {
      if (close) registry.close();
    }
  })();
  read.catch(() => {});
  try {
    const got = await Promise.race([read, timeout]);
    if (got !== "timeout") return got;
    deps.log.debug(`the live servers were not read within ${WARNING_READ_MS} ms: no warning`);
  } catch (err) {
    deps.log.debug("could not read the live servers for the warnings", { error: describe(err) });
  } finally {
    clearTimeout(timer);
  }
  return undefined;
}
