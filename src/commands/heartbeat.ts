/**
 * `heartbeat`: one shot, like the gem's. Asks the local agent over HTTP whether it runs and
 * in which role; a server writes servers/ and agents/, a client agents/ only; then removes
 * this node's older heartbeats (remembered in `<data-dir>/heartbeat.json`; listed for only
 * when there is no memo) and, every PURGE_EVERY-th call, other nodes' long-expired ones, as
 * the gem's heartbeat purged (purge.ts). Exit 1 (writing nothing) when consul is not running.
 */
import type { Config } from "../cli/config.ts";
import { announceAddress, announceNode } from "../cluster/announce.ts";
import type { ConsulClient } from "../consul/client.ts";
import { ConsulUnreachableError, describe, EXIT } from "../errors.ts";
import type { Logger } from "../log.ts";
import { purgeLongExpired, purgeTurn, readMemo, writeMemo } from "../cluster/purge.ts";
import { writeHeartbeat } from "../registry/heartbeats.ts";
import { HEARTBEAT_DIRS, type HeartbeatDir } from "../registry/layout.ts";
import type { Registry } from "../registry/registry.ts";

export interface HeartbeatDeps {
  log: Logger;
  consul: ConsulClient;
  openRegistry: () => Promise<Registry>;
  now: () => Date;
  /** For the purge turn when there is no memo (default Math.random). */
  random?: () => number;
}

export async function heartbeatCommand(config: Config, deps: HeartbeatDeps): Promise<number> {
  const { log } = deps;
  let self;
  try {
    self = await deps.consul.self();
  } catch (err) {
    if (err instanceof ConsulUnreachableError) {
      log.error(`consul is not running: ${err.message}`);
      return EXIT.consulDown;
    }
    throw err;
  }
  const node = announceNode(config, self);
  const address = announceAddress(config, self);
  const role = self.isServer ? "server" : "client";
  const dirs: HeartbeatDir[] = self.isServer ? ["servers", "agents"] : ["agents"];
  const memo = await readMemo(config.dataDir, node, HEARTBEAT_DIRS);
  const registry = await deps.openRegistry();
  try {
    const w = await writeHeartbeat(registry, {
      node,
      address,
      dirs,
      now: deps.now(),
      previous: memo?.keys,
    }, log);
    const count = (memo?.count ?? 0) + 1;
    const remembered = await writeMemo(config.dataDir, { node, keys: w.keys, count });
    if (!remembered) log.debug("cannot write the heartbeat memo", { dataDir: config.dataDir });
    let purged: string[] = [];
    if (purgeTurn(node, remembered ? count : undefined, deps.random ?? Math.random)) {
      purged = await purgeLongExpired(registry, config.expiry, log).catch((err) => {
        log.warn("could not purge expired heartbeats", { error: describe(err) });
        return [];
      });
    }
    log.info("heartbeat written", {
      role,
      address,
      keys: w.keys.join(","),
      removed: w.removed.length,
      purged: purged.length,
    });
  } finally {
    registry.close();
  }
  return EXIT.ok;
}
