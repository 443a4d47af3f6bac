/**
 * The pidfile safety net: `<data-dir>/consul.pid` names the consul agent auto-consul started,
 * with the process start time from /proc/<pid>/stat so a recycled pid is never mistaken for
 * it. When auto-consul dies without stopping consul (SIGKILL, OOM, crash) and parent-death
 * signalling was unavailable, the next start finds the leftover agent and stops it before
 * starting a new one (the old one holds the data dir and the ports).
 */
import { writeAtomic } from "../util/atomic.ts";
import { join } from "node:path";

export interface PidRecord {
  pid: number;
  /** Field 22 of /proc/<pid>/stat (clock ticks since boot); undefined off Linux. */
  start?: number;
}

/** What `stopLeftover` found and did. */
export type LeftoverResult =
  | { kind: "none" }
  /** A pidfile naming a process that is gone, or a recycled pid: the file was removed. */
  | { kind: "stale"; pid: number }
  /** The leftover agent was running and has been stopped. */
  | { kind: "stopped"; pid: number; signal: "SIGTERM" | "SIGKILL" }
  /**
   * A process with that pid runs but cannot be verified (no /proc at all): left alone, and no
   * second consul is started (spawnConsul refuses).
   */
  | { kind: "unverified"; pid: number };

export function pidFilePath(dataDir: string): string {
  return join(dataDir, "consul.pid");
}

/**
 * The start time of a live process, or undefined when it is gone or a zombie (or no /proc).
 * Synchronous, and only where /proc can be read directly (`-A`); see `processStartTime`.
 */
export function procStartTime(pid: number): number | undefined {
  let stat: string;
  try {
    stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return undefined;
  }
  return parseStartTime(stat);
}

/** Field 22 of a /proc/<pid>/stat line; undefined for a zombie or a malformed line. */
export function parseStartTime(stat: string): number | undefined {
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses; split after the last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  if (fields[0] === "Z" || fields[0] === "X") return undefined; // exited, not yet reaped
  const start = Number(fields[19]);
  return Number.isFinite(start) ? start : undefined;
}

/**
 * How /proc is read. Deno refuses /proc without `--allow-all` ("NotCapable"), and the shipped
 * binary has a narrower permission set; `--allow-run` is part of it, so /proc is then read by
 * `cat`. Undefined where there is no /proc at all (not Linux).
 */
export type ProcReader = (path: string) => Promise<string | undefined>;

let reader: Promise<{ read: ProcReader; how: string } | undefined> | undefined;

/** The way this process can read /proc (decided once), or undefined where it cannot. */
export function procReader(): Promise<{ read: ProcReader; how: string } | undefined> {
  reader ??= findProcReader();
  return reader;
}

async function findProcReader(): Promise<{ read: ProcReader; how: string } | undefined> {
  if (Deno.build.os !== "linux") return undefined;
  try {
    Deno.readTextFileSync("/proc/self/stat");
    return {
      how: "direct",
      read: (path) => Deno.readTextFile(path).catch(() => undefined),
    };
  } catch { /* NotCapable: try a helper process */ }
  const viaCat: ProcReader = async (path) => {
    try {
      const out = await new Deno.Command("cat", {
        args: [path],
        stdin: "null",
        stdout: "piped",
        stderr: "null",
      }).output();
      return out.success ? new TextDecoder().decode(out.stdout) : undefined;
    } catch {
      return undefined;
    }
  };
  return (await viaCat("/proc/self/stat")) !== undefined ? { how: "cat", read: viaCat } : undefined;
}

/** Like procStartTime, under any permission set (through `procReader`). */
export async function processStartTime(pid: number): Promise<number | undefined> {
  const r = await procReader();
  if (r === undefined) return undefined;
  const stat = await r.read(`/proc/${pid}/stat`);
  return stat === undefined ? undefined : parseStartTime(stat);
}

/** True when the pid is alive (not a zombie). Uses /proc on Linux. */
export function processAlive(pid: number): boolean {
  if (hasProc()) return procStartTime(pid) !== undefined;
  try {
    Deno.kill(pid, "SIGCONT"); // harmless probe where /proc is missing
    return true;
  } catch {
    return false;
  }
}

function hasProc(): boolean {
  try {
    Deno.statSync("/proc/self/stat");
    return true;
  } catch {
    return false;
  }
}

/** True when a pid exists (a probe by signal, for where /proc cannot be read). */
function pidExists(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch {
    return false;
  }
}

export async function writePidFile(path: string, pid: number, start?: number): Promise<void> {
  const record: PidRecord = { pid, start: start ?? await processStartTime(pid) };
  await writeAtomic(path, JSON.stringify(record) + "\n");
}

export async function readPidFile(path: string): Promise<PidRecord | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
  try {
    const v = JSON.parse(text.slice(0, 1024));
    if (Number.isInteger(v?.pid) && v.pid > 1) {
      return { pid: v.pid, start: typeof v.start === "number" ? v.start : undefined };
    }
  } catch { /* malformed: treated as absent below */ }
  return undefined;
}

/** Removes the pidfile if it still names `pid` (a newer agent may have replaced it). */
export async function removePidFile(path: string, pid: number): Promise<void> {
  const rec = await readPidFile(path).catch(() => undefined);
  if (rec?.pid !== pid) return;
  await Deno.remove(path).catch((err) => {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  });
}

export interface StopLeftoverOptions {
  /** How long the leftover gets to exit after SIGTERM before SIGKILL. Default 15 s. */
  termTimeoutMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

/** Stops the agent named by the pidfile, if it is still the process auto-consul started. */
export async function stopLeftover(
  path: string,
  opts: StopLeftoverOptions = {},
): Promise<LeftoverResult> {
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let rec: PidRecord | undefined;
  try {
    rec = await readPidFile(path);
  } catch (err) {
    throw new Error(`cannot read pidfile "${path}": ${(err as Error).message}`, { cause: err });
  }
  if (rec === undefined) {
    await Deno.remove(path).catch(() => {}); // absent or malformed
    return { kind: "none" };
  }
  const { pid } = rec;
  if (pid === Deno.pid) return { kind: "none" };
  if ((await procReader()) === undefined) {
    if (pidExists(pid)) return { kind: "unverified", pid };
    await removePidFile(path, pid);
    return { kind: "stale", pid };
  }
  const start = await processStartTime(pid);
  if (start === undefined || (rec.start !== undefined && start !== rec.start)) {
    await removePidFile(path, pid);
    return { kind: "stale", pid };
  }

  const stepMs = 200;
  const waitGone = async (ms: number): Promise<boolean> => {
    for (let waited = 0; waited < ms; waited += stepMs) {
      if ((await processStartTime(pid)) !== start) return true;
      await sleep(stepMs);
    }
    return (await processStartTime(pid)) !== start;
  };
  const send = (sig: Deno.Signal) => {
    try {
      Deno.kill(pid, sig);
    } catch { /* exited meanwhile */ }
  };
  send("SIGTERM");
  send("SIGCONT"); // a stopped (hung) leftover gets the SIGTERM only once it runs again
  let signal: "SIGTERM" | "SIGKILL" = "SIGTERM";
  if (!(await waitGone(opts.termTimeoutMs ?? 15_000))) {
    signal = "SIGKILL";
    send("SIGKILL");
    if (!(await waitGone(5_000))) {
      throw new Error(`leftover consul (pid ${pid}, from pidfile "${path}") did not exit`);
    }
  }
  await removePidFile(path, pid);
  return { kind: "stopped", pid, signal };
}
