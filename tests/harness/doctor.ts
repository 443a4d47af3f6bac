/** Runs `doctor` in this process (no CLI start-up) and returns its exit code and JSON report. */
import { parseConfig } from "../../src/cli/config.ts";
import { doctorCommand } from "../../src/commands/doctor.ts";
import { ConsulClient } from "../../src/consul/client.ts";
import type { Finding } from "../../src/doctor/facts.ts";
import { slotKey } from "../../src/registry/layout.ts";
import { Logger } from "../../src/log.ts";
import type { FileRegistry } from "../../src/registry/file.ts";
import { writeHeartbeat } from "../../src/registry/heartbeats.ts";
import { openRegistry } from "../../src/registry/open.ts";
import type { Agent } from "./consul.ts";

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

/** A gossip key: 32 random bytes, base64. */
export function gossipKey(): string {
  return btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
}

/** Heartbeats as `run` writes them (servers in both directories), and places for the servers. */
export async function register(registry: FileRegistry, agents: Agent[]): Promise<void> {
  const now = new Date();
  for (const a of agents) {
    await writeHeartbeat(registry, {
      node: a.node,
      address: a.ip,
      dirs: a.server ? ["servers", "agents"] : ["agents"],
      now,
    }, new Logger({ level: "error" }));
  }
  const servers = agents.filter((a) => a.server);
  for (const [i, s] of servers.entries()) {
    await registry.createIfAbsent(slotKey(i, 1), new TextEncoder().encode(s.node));
  }
}
