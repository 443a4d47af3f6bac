/**
 * The version of the consul binary: `consul version` run as an argv (never a shell), its
 * first line "Consul v1.8.7" parsed. The agent's command line and config file depend on it.
 */
import { describe, UsageError } from "../errors.ts";

export interface ConsulVersion {
  major: number;
  minor: number;
  patch: number;
}

const VERSION_RE = /^Consul v(\d+)\.(\d+)\.(\d+)\S*/m;

/** Parses the output of `consul version`; throws TypeError naming the text when it is not. */
export function parseConsulVersion(text: string): ConsulVersion {
  const m = VERSION_RE.exec(text);
  if (!m) {
    const first = text.trim().split("\n")[0].slice(0, 80);
    throw new TypeError(
      `unexpected output of "consul version" ${JSON.stringify(first)}: expected "Consul vX.Y.Z"`,
    );
  }
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]) };
}

/** True when `v` is `min` or newer. */
export function versionAtLeast(v: ConsulVersion, min: ConsulVersion): boolean {
  if (v.major !== min.major) return v.major > min.major;
  if (v.minor !== min.minor) return v.minor > min.minor;
  return v.patch >= min.patch;
}

export function formatVersion(v: ConsulVersion): string {
  return `${v.major}.${v.minor}.${v.patch}`;
}

/** The error for a consul binary that cannot be started (missing or not executable). */
export function consulBinaryError(bin: string, err: unknown): UsageError {
  if (err instanceof Deno.errors.NotFound) {
    return new UsageError(
      `consul binary "${bin}" not found: install consul or give --consul-bin`,
      { cause: err },
    );
  }
  if (err instanceof Deno.errors.PermissionDenied) {
    return new UsageError(
      `consul binary "${bin}" cannot be executed (permission denied): check the file or give --consul-bin`,
      { cause: err },
    );
  }
  const why = describe(err);
  return new UsageError(`consul binary "${bin}" cannot be started: ${why}`, { cause: err });
}

/** Runs `<bin> version` and parses it. Throws UsageError when the binary cannot be run. */
export async function consulVersion(bin: string): Promise<ConsulVersion> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(bin, {
      args: ["version"],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (err) {
    throw consulBinaryError(bin, err);
  }
  const dec = new TextDecoder();
  const stdout = dec.decode(out.stdout);
  if (!out.success) {
    const tail = (dec.decode(out.stderr) || stdout).trim().split("\n").slice(-3).join(" | ");
    throw new UsageError(
      `"${bin} version" failed with exit code ${out.code}: ${tail || "no output"}`,
    );
  }
  try {
    return parseConsulVersion(stdout);
  } catch (err) {
    throw new UsageError(
      `"${bin}" does not look like consul: ${(err as Error).message}`,
      { cause: err },
    );
  }
}
