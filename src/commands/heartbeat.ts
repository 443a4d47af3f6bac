/**
 * `heartbeat`: one shot, like the gem's. Asks the local agent over HTTP whether it runs and
 * in which role; a server writes servers/ and agents/, a client agents/ only; then removes
 * this node's older heartbeats. Exit 1 (writing nothing) when consul is not running.
 */
import type { Config } from "../cli/config.ts";
import { announceAddress, announceNode } from "../cluster/announce.ts";
import type { ConsulClient } from "../consul/client.ts";
import { ConsulUnreachableError, EXIT } from "../errors.ts";
import type { Logger } from "../log.ts";
import { writeHeartbeat } from "../registry/heartbeats.ts";
import type { Registry } from "../registry/registry.ts";

export interface HeartbeatDeps {
  log: Logger;
  consul: ConsulClient;
  openRegistry: () => Promise<Registry>;
  now: () => Date;
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
  const registry = await deps.openRegistry();
  try {
    const w = await writeHeartbeat(registry, {
      node,
      address,
      dirs: self.isServer ? ["servers", "agents"] : ["agents"],
      now: deps.now(),
    }, log);
    log.info("heartbeat written", {
      role,
      address,
      keys: w.keys.join(","),
      removed: w.removed.length,
    });
  } finally {
    registry.close();
  }
  return EXIT.ok;
}
