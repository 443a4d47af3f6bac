/**
 * `run` and `direct_run`: wiring only. Builds the node's collaborators (consul spawned with
 * its pidfile, the real clock, sleep and random, SIGINT/SIGTERM as the stop signal) and runs
 * the node's life (`cluster/node.ts`); exits with consul's exit code.
 */
import type { Config } from "../cli/config.ts";
import { runNode } from "../cluster/node.ts";
import type { ConsulClient } from "../consul/client.ts";
import { checkEncryption } from "../consul/encryption.ts";
import { pidFilePath } from "../consul/pidfile.ts";
import { guardOf, spawnConsul } from "../consul/process.ts";
import { validateConfigDir } from "../consul/validate.ts";
import { type ConsulVersion, consulVersion } from "../consul/version.ts";
import type { Logger } from "../log.ts";
import type { Registry } from "../registry/registry.ts";
import { sleep } from "../util/backoff.ts";
import { stopOnSignals } from "../util/signals.ts";

export interface RunDeps {
  log: Logger;
  consul: ConsulClient;
  openRegistry: () => Promise<Registry>;
  token?: string;
  gossipKey?: string;
}

export async function runCommand(config: Config, deps: RunDeps): Promise<number> {
  await checkEncryption(
    { ...config, gossipKey: deps.gossipKey, require: config.requireEncryption },
    deps.log,
  );
  // -c is checked by consul itself before anything is claimed, beside the version check.
  const decide = config.command === "run";
  const wanted = decide || config.registry !== undefined;
  // An S3 registry loads the AWS SDK (~0.2 s) before its first request: that goes on beside
  // `consul version` and `consul validate` (~0.1 s each), not after them. A folder opens in
  // microseconds but may create the folder: it waits until consul is known to be usable.
  const early = wanted && config.registry?.startsWith("s3://") ? deps.openRegistry() : undefined;
  early?.catch(() => {}); // awaited below; a failure surfaces there
  let version: ConsulVersion;
  try {
    [version] = await Promise.all([
      consulVersion(config.consulBin),
      config.configDir === undefined
        ? undefined
        : validateConfigDir(config.consulBin, config.configDir, `${config.dataDir}/preflight`),
    ]);
  } catch (err) {
    await early?.then((r) => r.close(), () => {});
    throw err;
  }
  const registry = early ? await early : wanted ? await deps.openRegistry() : undefined;
  const stop = stopOnSignals(["SIGINT", "SIGTERM"]);
  const { log } = deps;
  // Which protection against an orphaned consul is in force, said once at the first start.
  let guardTold = false;
  try {
    return await runNode({
      node: config.node,
      modeFrom: decide ? "decide" : "recorded",
      servers: config.servers,
      expirySeconds: config.expiry,
      ticksSeconds: config.ticks,
      dataDir: config.dataDir,
      advisory: config.advisory,
      version,
      bind: config.bind,
      advertise: config.advertise,
      client: config.client,
      configDir: config.configDir,
      datacenter: config.datacenter,
      consulArgs: config.consulArgs,
      gossipKey: deps.gossipKey,
      token: deps.token,
      hangTimeoutSeconds: config.hangTimeout,
      recovery: config.recovery,
    }, {
      spawn: async (args, onLine) => {
        const child = await spawnConsul({
          bin: config.consulBin,
          args,
          pidFile: pidFilePath(config.dataDir),
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
      consul: deps.consul,
      registry,
      sleep,
      random: Math.random,
      now: Date.now,
      stop: stop.signal,
      log,
    });
  } finally {
    stop.dispose();
    registry?.close();
  }
}
