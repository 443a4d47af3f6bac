/**
 * The one atomic file write: a temporary file beside the target (created new, written,
 * fsynced), renamed into place. A reader sees the old file or the new one, whole; a crash
 * never leaves a half-written file; the temporary file is removed when a step fails.
 */
import { errorText, LocalStateError } from "../errors.ts";

export interface AtomicWriteOptions {
  /** Permission bits of the new file. Default 0o644 (filtered by the umask). */
  mode?: number;
  /** Set `mode` exactly, not filtered by the umask (a file holding secrets: 0o600). */
  exactMode?: boolean;
  /** Permission bits of a directory created for the file. Default 0o700. */
  dirMode?: number;
}

export async function writeAtomic(
  path: string,
  text: string,
  opts: AtomicWriteOptions = {},
): Promise<void> {
  const mode = opts.mode ?? 0o644;
  const dir = path.slice(0, path.lastIndexOf("/")) || ".";
  await Deno.mkdir(dir, { recursive: true, mode: opts.dirMode ?? 0o700 });
  const tmp = `${dir}/.${path.slice(dir.length + 1)}.${crypto.randomUUID()}.tmp`;
  try {
    const f = await Deno.open(tmp, { write: true, createNew: true, mode });
    try {
      // The mode given on create is filtered by the umask: make it exact when asked.
      if (opts.exactMode) await Deno.chmod(tmp, mode);
      await f.write(new TextEncoder().encode(text));
      await f.sync();
    } finally {
      f.close();
    }
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
}

/** Local state (data dir files): atomic, and a failure is a LocalStateError naming the file. */
export async function writeStateFile(path: string, text: string, mode = 0o644): Promise<void> {
  try {
    await writeAtomic(path, text, { mode });
  } catch (err) {
    const why = errorText(err).split(" (os error")[0];
    throw new LocalStateError(`cannot write ${path}: ${why}`, { cause: err });
  }
}
