/**
 * Gossip encryption at start, and joins refused for want of the same key.
 *
 * Without a gossip key, anyone who can write one heartbeat into the registry (or reach port
 * 8301) can make nodes join their own server and take the cluster over. `run` therefore
 * says once, at start, when no key is in force, and with `--require-encryption` refuses to
 * start. A key is in force when it comes from `--gossip-key-file`, `AUTO_CONSUL_GOSSIP_KEY`,
 * an `encrypt` in a config file consul reads (`-c`, or `-config-file`/`-config-dir`/`-hcl`/
 * `-encrypt` after `--`), or the keyring consul keeps in its data dir once it ran with a key.
 *
 * A keyed agent that joins a node without the key (or the other way round) gets a clear
 * refusal from memberlist; `handshakeRefusal` recognises it so the join loop can name the
 * address that refused.
 */
import { join } from "node:path";
import { UsageError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { consulDataDir } from "./agent_args.ts";

/** Where the gossip key in force comes from. */
export type KeySource =
  | { kind: "gossip-key"; from: string }
  | { kind: "config"; path: string }
  | { kind: "consul-args"; arg: string }
  | { kind: "keyring"; path: string };

export interface EncryptionInput {
  /** The key loaded from --gossip-key-file or AUTO_CONSUL_GOSSIP_KEY (see cli/secrets.ts). */
  gossipKey?: string;
  gossipKeyFile?: string;
  configDir?: string;
  /** Everything after `--`. */
  consulArgs: readonly string[];
  /** auto-consul's data dir: consul's data is in `<dataDir>/server` or `<dataDir>/agent`. */
  dataDir: string;
}

/** Reading files, passed in (tests use real temporary folders; nothing here writes). */
export interface Files {
  readTextFile(path: string): Promise<string>;
  /** Names of the entries of a directory (files only). */
  readDir(path: string): Promise<string[]>;
  exists(path: string): Promise<boolean>;
}

export const realFiles: Files = {
  readTextFile: (p) => Deno.readTextFile(p),
  readDir: async (p) => {
    const out: string[] = [];
    for await (const e of Deno.readDir(p)) if (!e.isDirectory) out.push(e.name);
    return out.sort();
  },
  exists: async (p) => {
    try {
      await Deno.stat(p);
      return true;
    } catch {
      return false;
    }
  },
};

/** Whether consul config text (JSON or HCL, told by the file name) sets a gossip key. */
export function configSetsEncrypt(name: string, text: string): boolean {
  if (name.endsWith(".json")) {
    try {
      const v = JSON.parse(text);
      return typeof v === "object" && v !== null && typeof v.encrypt === "string" &&
        v.encrypt !== "";
    } catch {
      return false; // consul itself will refuse a broken file, with a better message
    }
  }
  return hclSetsEncrypt(text);
}

/** `encrypt = "..."` on a line of its own (comments and `encrypt_verify_*` do not count). */
export function hclSetsEncrypt(text: string): boolean {
  return text.split("\n").some((line) => /^\s*"?encrypt"?\s*[=:]\s*"[^"]+"/.test(line));
}

/** Config files and `-encrypt` named in consul's own arguments (after `--`). */
function argFiles(args: readonly string[]): { files: string[]; dirs: string[]; hit?: string } {
  const files: string[] = [];
  const dirs: string[] = [];
  let hit: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const m = /^--?(encrypt|hcl|config-file|config-dir)(?:=(.*))?$/s.exec(args[i]);
    if (!m) continue;
    const value = m[2] ?? args[++i];
    if (value === undefined) break;
    if (m[1] === "encrypt" && value !== "") hit = "-encrypt";
    else if (m[1] === "hcl" && hclSetsEncrypt(value)) hit = "-hcl";
    else if (m[1] === "config-file") files.push(value);
    else if (m[1] === "config-dir") dirs.push(value);
  }
  return { files, dirs, hit };
}

/** Where the gossip key in force comes from, or undefined when gossip is not encrypted. */
export async function gossipKeySource(
  input: EncryptionInput,
  files: Files = realFiles,
): Promise<KeySource | undefined> {
  if (input.gossipKey !== undefined) {
    return {
      kind: "gossip-key",
      from: input.gossipKeyFile
        ? `--gossip-key-file ${input.gossipKeyFile}`
        : "AUTO_CONSUL_GOSSIP_KEY",
    };
  }
  const args = argFiles(input.consulArgs);
  if (args.hit) return { kind: "consul-args", arg: args.hit };
  const dirs = [...(input.configDir ? [input.configDir] : []), ...args.dirs];
  const paths = [...args.files];
  for (const dir of dirs) {
    const names = await files.readDir(dir).catch(() => [] as string[]);
    for (const n of names) if (n.endsWith(".json") || n.endsWith(".hcl")) paths.push(join(dir, n));
  }
  for (const p of paths) {
    const text = await files.readTextFile(p).catch(() => undefined);
    if (text !== undefined && configSetsEncrypt(p, text)) return { kind: "config", path: p };
  }
  // consul's data dirs (and `client`, where earlier versions kept a client's data)
  const dataDirs = new Set([
    consulDataDir(input.dataDir, "server"),
    consulDataDir(input.dataDir, "client"),
    join(input.dataDir, "client"),
  ]);
  for (const d of dataDirs) {
    const keyring = join(d, "serf", "local.keyring");
    if (await files.exists(keyring)) return { kind: "keyring", path: keyring };
  }
  return undefined;
}

export function describeSource(s: KeySource): string {
  switch (s.kind) {
    case "gossip-key":
      return s.from;
    case "config":
      return `encrypt in ${s.path}`;
    case "consul-args":
      return `${s.arg} after --`;
    case "keyring":
      return `consul's keyring ${s.path}`;
  }
}

export const NO_KEY_WARNING =
  "no gossip encryption key is in force: anyone who can write to the registry or reach port " +
  "8301 can join this cluster and take it over; give --gossip-key-file PATH or " +
  "AUTO_CONSUL_GOSSIP_KEY (make a key with `consul keygen`), and --require-encryption to " +
  "refuse to start without one";

/**
 * At the start of run/direct_run: throws a UsageError when `require` and no key is in force,
 * warns once when none is, and logs where the key comes from otherwise.
 */
export async function checkEncryption(
  input: EncryptionInput & { require: boolean },
  log: Logger,
  files: Files = realFiles,
): Promise<KeySource | undefined> {
  const source = await gossipKeySource(input, files);
  if (source) {
    log.info("gossip encryption is on", { key: describeSource(source) });
    return source;
  }
  if (input.require) {
    throw new UsageError(
      "--require-encryption: no gossip key is in force: give --gossip-key-file PATH, " +
        "AUTO_CONSUL_GOSSIP_KEY, or encrypt in a file of the -c config dir " +
        "(make a key with `consul keygen`)",
    );
  }
  log.warn(NO_KEY_WARNING);
  return undefined;
}

/**
 * Why a join was refused at the gossip handshake (a key mismatch), from consul's error
 * message; undefined for any other failure.
 */
export function handshakeRefusal(message: string): string | undefined {
  if (/Encryption is configured but remote state is not encrypted/i.test(message)) {
    return "it has no gossip key and this agent has one";
  }
  if (/Remote state is encrypted and encryption is not configured/i.test(message)) {
    return "it uses a gossip key and this agent has none";
  }
  if (/No installed keys could decrypt/i.test(message)) {
    return "its gossip key differs from this agent's";
  }
  return undefined;
}

/** The log line for a join refused at the handshake. */
export function refusalMessage(addr: string, why: string): string {
  return `gossip handshake with ${addr} refused (${why}): not joined; ` +
    "a node in the registry that does not hold this cluster's key (rogue or misconfigured)";
}

/**
 * The environment consul is started with: auto-consul's own, without the gossip key. consul
 * gets the key from the generated 0600 config file; in its environment the key would be
 * readable in /proc/<pid>/environ and inherited by every check script consul runs.
 */
export function consulEnvironment(
  env: Record<string, string | undefined>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v !== undefined && k !== "AUTO_CONSUL_GOSSIP_KEY") out[k] = v;
  }
  return out;
}
