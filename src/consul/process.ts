/**
 * The consul subprocess behind one narrow adapter: start (argv, never a shell), output line
 * by line to a callback, the last lines kept for error messages, signal, exit status.
 *
 * The child must not outlive auto-consul. Two layers:
 * - parent-death signal: on Linux, when util-linux `setpriv --pdeathsig` is available, consul
 *   is started as `setpriv --pdeathsig SIGTERM -- <consul> agent ...` (setpriv sets
 *   PR_SET_PDEATHSIG and execs consul: same pid, still an argv). If auto-consul dies, even by
 *   SIGKILL, the kernel sends consul SIGTERM, and consul then leaves or not per its config.
 * - pidfile (`pidFile`): a leftover agent recorded by a previous run is stopped before a new
 *   one starts. It covers what pdeathsig cannot: no setpriv, other OSes, and the instant
 *   between fork and prctl.
 */
import { ConsulStartError } from "../errors.ts";
import { consulEnvironment } from "./encryption.ts";
import { consulBinaryError } from "./version.ts";
import {
  type LeftoverResult,
  procReader,
  removePidFile,
  stopLeftover,
  writePidFile,
} from "./pidfile.ts";

export type OutputStream = "stdout" | "stderr";
export type LineHandler = (stream: OutputStream, line: string) => void;

export interface ExitStatus {
  code: number;
  signal: Deno.Signal | null;
}

/** A running consul agent. */
export interface ConsulProcess {
  readonly pid: number;
  /** Resolves once consul has exited and its output has been read. Never rejects. */
  readonly status: Promise<ExitStatus>;
  /** Sends a signal; a no-op once consul has exited. */
  kill(signal: Deno.Signal): void;
  /** The last `n` output lines (stdout and stderr interleaved), oldest first. */
  tail(n?: number): string[];
}

export interface SpawnConsulOptions {
  /** The consul binary: a path, or a name looked up in PATH. */
  bin: string;
  args: readonly string[];
  /** Extra environment variables (added to auto-consul's own). */
  env?: Record<string, string>;
  onLine?: LineHandler;
  /** How many output lines `tail` keeps. Default 50. */
  tailLines?: number;
  /**
   * Signal consul gets when auto-consul dies (via setpriv); null to not use it.
   * Default "SIGTERM". Ignored where setpriv with --pdeathsig is not available.
   */
  deathSignal?: Deno.Signal | null;
  /** The pidfile: a leftover agent it names is stopped first; it then names this one. */
  pidFile?: string;
  /** Start consul in a session of its own (via setsid, when present). Default true. */
  newSession?: boolean;
  /** setpriv to use; default: found in PATH. For tests. */
  setprivBin?: string;
}

export interface SpawnedConsul extends ConsulProcess {
  /** Whether a parent-death signal guards this process. */
  readonly deathSignal: Deno.Signal | null;
  /** What the pidfile check found before the start (undefined without a pidfile). */
  readonly leftover?: LeftoverResult;
}

/** The longest line forwarded; longer output is split (bounds memory per line). */
const MAX_LINE = 16 * 1024;

export async function spawnConsul(opts: SpawnConsulOptions): Promise<SpawnedConsul> {
  const bin = resolveBin(opts.bin);
  const leftover = opts.pidFile === undefined ? undefined : await stopLeftover(opts.pidFile);
  if (leftover?.kind === "unverified") {
    // Never a second consul beside one that holds the data dir and the ports (a crash loop).
    throw new ConsulStartError(
      `a process (pid ${leftover.pid}) named by ${opts.pidFile} is running and cannot be ` +
        `verified as this data dir's consul (no /proc): stop it, or remove the pidfile if it ` +
        `is not consul`,
    );
  }
  const setpriv = opts.deathSignal === null
    ? undefined
    : await setprivWithPdeathsig(opts.setprivBin);
  const deathSignal = setpriv === undefined ? null : opts.deathSignal ?? "SIGTERM";
  const guarded = setpriv === undefined || deathSignal === null
    ? [bin, ...opts.args]
    : [setpriv, "--pdeathsig", deathSignal, "--", bin, ...opts.args];
  // Its own session: a Ctrl-C in a terminal reaches only auto-consul, which forwards it once.
  // (Two SIGINTs would cut a client's graceful leave short.)
  const setsid = opts.newSession === false ? undefined : findSetsid();
  const [cmd, ...args] = setsid === undefined ? guarded : [setsid, ...guarded];

  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(cmd, {
      args,
      // auto-consul's environment minus the gossip key (consul reads it from our 0600 file).
      clearEnv: true,
      env: { ...consulEnvironment(Deno.env.toObject()), ...opts.env },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (err) {
    throw consulBinaryError(opts.bin, err);
  }

  const keep = Math.max(1, opts.tailLines ?? 50);
  const lines: string[] = [];
  const emit = (stream: OutputStream, line: string) => {
    lines.push(line);
    if (lines.length > keep) lines.splice(0, lines.length - keep);
    try {
      opts.onLine?.(stream, line);
    } catch (err) {
      // A failing handler must not stop the pump: consul would block on a full pipe.
      console.error(`auto-consul: consul output handler failed: ${(err as Error).message}`);
    }
  };
  const pumps = Promise.all([
    pumpLines(child.stdout, (l) => emit("stdout", l)),
    pumpLines(child.stderr, (l) => emit("stderr", l)),
  ]);

  let exited = false;
  const status = child.status.then(async (s) => {
    exited = true;
    // The output normally ends with the process; a grandchild holding the pipe must not
    // hold the status back for long.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      pumps,
      new Promise<void>((r) => timer = setTimeout(r, 2000)),
    ]);
    clearTimeout(timer);
    if (opts.pidFile !== undefined) await removePidFile(opts.pidFile, child.pid).catch(() => {});
    return { code: s.code, signal: s.signal };
  });

  if (opts.pidFile !== undefined) {
    try {
      await writePidFile(opts.pidFile, child.pid);
    } catch (err) {
      // Without the pidfile the safety net is gone: stop the agent rather than run unguarded.
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await status;
      throw new Error(`cannot write pidfile "${opts.pidFile}": ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  return {
    pid: child.pid,
    status,
    deathSignal,
    leftover,
    kill(signal: Deno.Signal) {
      if (exited) return;
      try {
        child.kill(signal);
      } catch { /* exited meanwhile */ }
    },
    tail(n = keep) {
      return lines.slice(-n);
    },
  };
}

/**
 * Which protections keep this consul from outliving auto-consul, as one line for the start
 * log: "warn" when the parent-death signal is missing (setpriv not installed) or the pidfile
 * check cannot verify a leftover (no /proc).
 */
export async function guardOf(
  child: Pick<SpawnedConsul, "deathSignal" | "leftover">,
): Promise<{ level: "info" | "warn"; message: string }> {
  const proc = await procReader();
  const pidfile = child.leftover === undefined
    ? undefined
    : proc === undefined
    ? "a pidfile (leftovers cannot be verified here: no /proc)"
    : `a pidfile checked at the next start (/proc read ${
      proc.how === "direct" ? "directly" : "through cat"
    })`;
  const parts = [
    child.deathSignal ? `a parent-death signal (${child.deathSignal}, via setpriv)` : undefined,
    pidfile,
  ].filter((x) => x !== undefined);
  const level = child.deathSignal && proc !== undefined ? "info" : "warn";
  const missing = child.deathSignal
    ? ""
    : "; setpriv with --pdeathsig was not found (util-linux), so a consul whose auto-consul was " +
      "killed keeps running until the next start stops it";
  return {
    level,
    message: `consul is guarded by ${parts.join(" and ") || "nothing"}${missing}`,
  };
}

/** Reads a byte stream to its end, calling `onLine` per line (without "\n" or "\r\n"). */
async function pumpLines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<void> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        onLine(buf.slice(0, nl).replace(/\r$/, ""));
        buf = buf.slice(nl + 1);
      }
      while (buf.length > MAX_LINE) {
        onLine(buf.slice(0, MAX_LINE));
        buf = buf.slice(MAX_LINE);
      }
    }
    if (buf !== "") onLine(buf.replace(/\r$/, ""));
  } catch {
    // The pipe broke (process gone): what was read has been forwarded.
  } finally {
    reader.releaseLock();
  }
}

/**
 * The absolute path of the binary (PATH lookup for a bare name). Throws the "not found"
 * UsageError here, because behind setpriv a missing consul would only show as exit code 127.
 */
export function resolveBin(bin: string, path = Deno.env.get("PATH") ?? ""): string {
  const candidates = bin.includes("/")
    ? [bin]
    : path.split(":").filter((d) => d !== "").map((d) => `${d}/${bin}`);
  for (const c of candidates) {
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(c);
    } catch {
      continue;
    }
    if (info.isFile && ((info.mode ?? 0o755) & 0o111) !== 0) return c;
    if (bin.includes("/")) throw consulBinaryError(bin, new Deno.errors.PermissionDenied());
  }
  throw consulBinaryError(bin, new Deno.errors.NotFound());
}

/** The path of setsid (util-linux), or undefined where there is none. */
function findSetsid(): string | undefined {
  if (Deno.build.os !== "linux") return undefined;
  try {
    return resolveBin("setsid");
  } catch {
    return undefined;
  }
}

const setprivCache = new Map<string, Promise<string | undefined>>();

/** The path of a setpriv that supports --pdeathsig (util-linux >= 2.33), or undefined. */
export function setprivWithPdeathsig(bin?: string): Promise<string | undefined> {
  if (Deno.build.os !== "linux") return Promise.resolve(undefined);
  const key = bin ?? "";
  let found = setprivCache.get(key);
  if (found === undefined) {
    found = probeSetpriv(bin);
    setprivCache.set(key, found);
  }
  return found;
}

async function probeSetpriv(bin?: string): Promise<string | undefined> {
  let path: string;
  try {
    path = resolveBin(bin ?? "setpriv");
  } catch {
    return undefined;
  }
  try {
    const out = await new Deno.Command(path, {
      args: ["--help"],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    return out.success && text.includes("--pdeathsig") ? path : undefined;
  } catch {
    return undefined;
  }
}
