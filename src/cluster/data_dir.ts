/**
 * The data dir, opened by every command that writes it (run, direct_run, set_mode, set_server,
 * set_agent): created 0700 when missing (it holds consul's data and the secrets config),
 * checked to be a writable folder, and locked — an OS file lock on `<data-dir>/lock`, held until
 * the process ends, even by SIGKILL — so that one process at a time writes it. A second one is
 * refused at once, naming the holder's pid. Consul does not inherit the lock (Deno opens files
 * close-on-exec): a consul left behind by a killed `run` is handled by the pidfile check.
 */
import { describe, LocalStateError, UsageError } from "../errors.ts";

export const LOCK_FILE = "lock";

export interface DataDirLock {
  readonly dataDir: string;
  /** Releases the lock (also released when the process ends). */
  release(): void;
}

/** Opens and locks the data dir; throws LocalStateError (exit 7) or UsageError (exit 2, held). */
export async function lockDataDir(dataDir: string): Promise<DataDirLock> {
  try {
    await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 });
  } catch (err) {
    if (!(err instanceof Deno.errors.AlreadyExists)) throw unusable(dataDir, err);
  }
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(dataDir);
  } catch (err) {
    throw unusable(dataDir, err);
  }
  if (!info.isDirectory) {
    throw new LocalStateError(
      `data dir ${dataDir} is not a folder: give -d a folder auto-consul may create and write`,
    );
  }
  const path = `${dataDir}/${LOCK_FILE}`;
  let file: Deno.FsFile;
  try {
    // Opening for writing is the writability check as well (a read-only mount fails here).
    file = await Deno.open(path, { read: true, write: true, create: true, mode: 0o600 });
  } catch (err) {
    throw unusable(dataDir, err);
  }
  let locked: boolean;
  try {
    locked = await file.tryLock(true);
  } catch (err) {
    file.close();
    throw unusable(dataDir, err);
  }
  if (!locked) {
    const holder = await readHolder(path);
    file.close();
    throw new UsageError(
      `data dir ${dataDir} is in use by another auto-consul${
        holder ? ` (pid ${holder})` : ""
      }: one process per data dir (lock ${path})`,
    );
  }
  try {
    await file.truncate(0);
    await file.write(new TextEncoder().encode(`${Deno.pid}\n`));
  } catch (err) {
    file.close();
    throw unusable(dataDir, err);
  }
  let open = true;
  return {
    dataDir,
    release() {
      if (!open) return;
      open = false;
      file.close();
    },
  };
}

/** The pid a lock file names, when it names one. */
async function readHolder(path: string): Promise<number | undefined> {
  try {
    const text = (await Deno.readTextFile(path)).trim();
    return /^\d{1,10}$/.test(text) ? Number(text) : undefined;
  } catch {
    return undefined;
  }
}

function unusable(dataDir: string, err: unknown): LocalStateError {
  const code = (err as { code?: string }).code;
  const why = err instanceof Deno.errors.NotADirectory || code === "ENOTDIR"
    ? "a part of its path is a file"
    : code === "EROFS"
    ? "it is on a read-only file system"
    : err instanceof Deno.errors.PermissionDenied || code === "EACCES"
    ? "permission denied"
    : describe(err);
  return new LocalStateError(
    `data dir ${dataDir} is not usable (${why}): give -d a folder auto-consul may create and write`,
    { cause: err },
  );
}
