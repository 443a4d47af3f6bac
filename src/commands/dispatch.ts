/**
 * Builds the real dependencies for a command and runs it. Imported lazily by main.ts; each
 * command module is imported only when that command runs, and the S3 SDK only when an
 * s3:// registry is opened.
 */
import type { Config } from "../cli/config.ts";
import { loadSecrets } from "../cli/secrets.ts";
import type { ConsulClient } from "../consul/client.ts";
import { connectConsul } from "../consul/connect.ts";
import { UsageError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { openRegistry } from "../registry/open.ts";
import type { Registry } from "../registry/registry.ts";

export interface CommonDeps {
  log: Logger;
  consul: ConsulClient;
  openRegistry: () => Promise<Registry>;
  token?: string;
  gossipKey?: string;
}

export function buildDeps(
  config: Config,
  env: Record<string, string | undefined>,
  log: Logger,
): CommonDeps {
  const secrets = loadSecrets(config, env, (p) => Deno.readTextFileSync(p), (p) => {
    try {
      return Deno.statSync(p).mode ?? undefined;
    } catch {
      return undefined;
    }
  });
  for (const w of secrets.warnings) log.warn(w);
  // consul's own client environment (TLS, unix sockets, basic auth, namespace): connect.ts
  const consul = connectConsul(config.httpAddr, env, { token: secrets.token });
  return {
    log,
    consul,
    token: secrets.token,
    gossipKey: secrets.gossipKey,
    openRegistry: () => {
      if (!config.registry) {
        throw new UsageError(`command ${config.command} needs a registry: give -r URL`);
      }
      return openRegistry(config.registry, {
        region: config.region,
        endpoint: config.s3Endpoint,
        log: log.child("registry"),
        // A mistyped folder must not start a separate cluster: only run creates one, and only
        // inside an existing parent folder; every other command needs it to exist.
        missing: config.command === "run" || config.command === "direct_run" ? "create" : "require",
      });
    },
  };
}

export async function runCommand(
  config: Config,
  env: Record<string, string | undefined>,
  log: Logger,
): Promise<number> {
  const deps = buildDeps(config, env, log);
  const print = (text: string) => console.log(text);
  switch (config.command) {
    case "heartbeat": {
      const { heartbeatCommand } = await import("./heartbeat.ts");
      return await heartbeatCommand(config, { ...deps, now: () => new Date() });
    }
    case "status": {
      const { statusCommand } = await import("./status.ts");
      return await statusCommand(config, { ...deps, print });
    }
    case "doctor": {
      const { doctorCommand } = await import("./doctor.ts");
      return await doctorCommand(config, { ...deps, print });
    }
    case "set_server":
    case "set_agent":
    case "set_mode":
    case "run":
    case "direct_run": {
      // One process per data dir, for the whole life of the command (released at exit).
      const { lockDataDir } = await import("../cluster/data_dir.ts");
      const lock = await lockDataDir(config.dataDir);
      try {
        if (config.command === "run" || config.command === "direct_run") {
          const { runCommand } = await import("./run.ts");
          return await runCommand(config, deps);
        }
        const { setModeByHand, setModeCommand } = await import("./set_mode.ts");
        if (config.command === "set_mode") return await setModeCommand(config, deps);
        return await setModeByHand(
          config,
          config.command === "set_server" ? "server" : "agent",
          deps,
        );
      } finally {
        lock.release();
      }
    }
    case "recover": {
      const { recoverCommand } = await import("./recover.ts");
      return await recoverCommand(config, { ...deps, print });
    }
    case "elect": {
      const { electCommand } = await import("./elect.ts");
      return await electCommand(config, { ...deps, print });
    }
  }
}
