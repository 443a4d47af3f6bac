/** Runs `doctor` in this process (no CLI start-up) and returns its exit code and JSON report. */
import { parseConfig } from "../../src/cli/config.ts";
import { doctorCommand } from "../../src/commands/doctor.ts";
import { ConsulClient } from "../../src/consul/client.ts";
import type { Finding } from "../../src/doctor/facts.ts";
import { Logger } from "../../src/log.ts";
import { openRegistry } from "../../src/registry/open.ts";

export interface DoctorReport {
  code: number;
  findings: Finding[];
  json: Record<string, unknown>;
}

export async function doctorInProcess(opts: {
  registry: string;
  httpAddr: string;
  servers: number;
  dataDir?: string;
  expiry?: number;
}): Promise<DoctorReport> {
  const argv = ["-r", opts.registry, "-s", String(opts.servers), "doctor", "--json"];
  if (opts.dataDir) argv.unshift("-d", opts.dataDir);
  if (opts.expiry) argv.unshift("-e", String(opts.expiry));
  const parsed = parseConfig({ argv, env: {}, hostname: "doctor-test" });
  if (parsed.kind !== "command") throw new Error("doctor argv did not parse to a command");
  const log = new Logger({ level: "error" });
  let out = "";
  const code = await doctorCommand(parsed.config, {
    log,
    consul: new ConsulClient({ baseUrl: opts.httpAddr }),
    openRegistry: () => openRegistry(opts.registry, { log }),
    print: (t) => out += t,
  });
  const json = JSON.parse(out);
  return { code, findings: json.findings, json };
}

/** The findings with this id (a readable failure when there are none). */
export function findingsOf(r: DoctorReport, id: string): Finding[] {
  return r.findings.filter((f) => f.id === id);
}

export function ids(r: DoctorReport): string[] {
  return r.findings.map((f) => `${f.severity}:${f.id}`);
}
