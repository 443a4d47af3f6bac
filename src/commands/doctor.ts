/** `doctor`: gathers what the registry, the local agent and the data dir say; reports findings. */
import type { Config } from "../cli/config.ts";
import type { ConsulClient } from "../consul/client.ts";
import { diagnose, exitCodeFor, renderFindings } from "../doctor/diagnose.ts";
import { gather } from "../doctor/gather.ts";
import type { Logger } from "../log.ts";
import type { Registry } from "../registry/registry.ts";

export interface DoctorDeps {
  log: Logger;
  consul: ConsulClient;
  openRegistry: () => Promise<Registry>;
  print: (text: string) => void;
}

export async function doctorCommand(config: Config, deps: DoctorDeps): Promise<number> {
  const facts = await gather(
    { servers: config.servers, expirySeconds: config.expiry, dataDir: config.dataDir },
    deps,
  );
  const findings = diagnose(facts);
  const code = exitCodeFor(findings);
  if (config.json) {
    deps.print(JSON.stringify(
      {
        healthy: code === 0,
        exitCode: code,
        servers: config.servers,
        agent: "error" in facts.agent
          ? { reachable: false, error: facts.agent.error }
          : { reachable: true, node: facts.agent.self.node, server: facts.agent.self.isServer },
        registry: "error" in facts.registry ? { readable: false, error: facts.registry.error } : {
          readable: true,
        },
        findings,
      },
      null,
      2,
    ));
  } else {
    deps.print(renderFindings(findings, facts));
  }
  return code;
}
