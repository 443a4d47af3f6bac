/**
 * The gem's mode commands: `set_server` and `set_agent` record a mode by hand (`run` then
 * respects it); `set_mode` decides it from the registry as `run` would and prints it.
 */
import type { Config } from "../cli/config.ts";
import { decideMode } from "../cluster/mode.ts";
import { modeOptions } from "../cluster/node.ts";
import { serverWarnings } from "../cluster/server_warnings.ts";
import { type Mode, writeMode, writePlace } from "../cluster/state.ts";
import type { Logger } from "../log.ts";
import type { Registry } from "../registry/registry.ts";
import { sleep } from "../util/backoff.ts";

export interface SetModeDeps {
  log: Logger;
  openRegistry: () => Promise<Registry>;
}

/** `set_server` / `set_agent`: the mode set by hand; any place held is forgotten. */
export async function setModeByHand(
  config: Pick<Config, "dataDir" | "node" | "servers">,
  mode: Mode,
  log: Logger,
): Promise<number> {
  await writeMode(config.dataDir, mode, true);
  await writePlace(config.dataDir, undefined);
  log.info(`mode set to ${mode}`, { dataDir: config.dataDir });
  for (const w of serverWarnings({ ...config, mode })) log.warn(w);
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
    for (
      const w of serverWarnings({
        ...config,
        mode: r.mode,
        place: r.explicit ? undefined : r.place,
        liveServers: r.liveServers?.map((m) => m.node),
      })
    ) log.warn(w);
    console.log(r.mode);
    await r.settled; // the probe key's deletion, before the registry closes
    return 0;
  } finally {
    registry.close();
  }
}
