/** Runs `status` in this process against `httpAddr` (no CLI start-up in the timing). */
import { parseConfig } from "../../src/cli/config.ts";
import { statusCommand } from "../../src/commands/status.ts";
import { ConsulClient } from "../../src/consul/client.ts";
import { Logger } from "../../src/log.ts";
import { openRegistry } from "../../src/registry/open.ts";

export async function statusInProcess(
  registry: string,
  httpAddr: string,
  json: boolean,
): Promise<{ code: number; out: string; ms: number }> {
  const parsed = parseConfig({
    argv: ["-r", registry, "status", ...(json ? ["--json"] : [])],
    env: {},
    hostname: "tester",
  });
  if (parsed.kind !== "command") throw new Error("status argv did not parse to a command");
  const log = new Logger({ level: "error" });
  let out = "";
  const started = performance.now();
  const code = await statusCommand(parsed.config, {
    log,
    consul: new ConsulClient({ baseUrl: httpAddr }),
    openRegistry: () => openRegistry(registry, { log }),
    print: (t) => out += t,
  });
  return { code, out, ms: performance.now() - started };
}
