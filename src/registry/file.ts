/**
 * The `file:///path` registry: a local folder (development, tests, a shared NFS mount).
 * A key maps to a file under the root ("servers/x" → <root>/servers/x). Writes go through
 * a temp file in the same folder, so a reader never sees a half-written object; temp files
 * are never listed. `createIfAbsent` links the temp file to the target: the link fails when
 * the target exists, which makes it atomic among concurrent creators.
 */
import { describe, RegistryError } from "../errors.ts";
import { Logger } from "../log.ts";
import { concatBytes, tooBig } from "./bytes.ts";
import { assertKey, assertListPrefix } from "./key.ts";
import type { CreateOutcome, Listing, ObjectInfo, Registry } from "./registry.ts";

/** Names of in-flight temp files start with this; keys may not use it. */
export const TEMP_PREFIX = ".auto-consul-tmp.";
/** Folder depth and entry count a listing walks at most. */
const MAX_DEPTH = 32;
const MAX_ENTRIES = 1_000_000;
/** Listing passes at most when entries vanish while a pass reads them. */
const MAX_PASSES = 4;

export interface FileRegistryOptions {
  /** Absolute path of the root folder (created on first write). */
  root: string;
  /**
   * Test-only: make `createIfAbsent` overwrite and say "created", like a store that ignores
   * conditional writes (to exercise the probe and the refusal to run on such a store).
   */
  ignoreConditions?: boolean;
  /** Where skipped folder entries (FIFOs, escaping symlinks) are reported. */
  log?: Logger;
  /** The store clock for listings (default: the local clock). */
  now?: () => Date;
}

export class FileRegistry implements Registry {
  readonly url: string;
  readonly root: string;
  readonly #ignoreConditions: boolean;
  readonly #log: Logger;
  readonly #now: () => Date;
  #realRoot: string | undefined;

  constructor(opts: FileRegistryOptions) {
    if (!opts.root.startsWith("/") || opts.root.includes("\0")) {
      throw new TypeError(`invalid registry folder "${opts.root}": expected an absolute path`);
    }
    this.root = opts.root.length > 1 ? opts.root.replace(/\/+$/, "") : opts.root;
    this.#ignoreConditions = opts.ignoreConditions ?? false;
    this.#log = opts.log ?? new Logger({ component: "registry" });
    this.#now = opts.now ?? (() => new Date());
    this.url = `file://${this.root}${this.#ignoreConditions ? "?ignore-conditions=1" : ""}`;
  }

  async list(dir: string): Promise<Listing> {
    assertListPrefix(dir);
    const base = dir.slice(0, dir.lastIndexOf("/") + 1); // the folder holding every match
    const objects: ObjectInfo[] = [];
    const realRoot = await this.#resolveRoot();
    // A directory read followed by a stat of each entry is not a snapshot: an object replaced
    // in between (a heartbeat rotated: new key created, old one deleted) could vanish from
    // both. When an entry vanished, the pass is read again (bounded), so a listing shows
    // every object that existed throughout it.
    for (let pass = 0; realRoot !== undefined && pass < MAX_PASSES; pass++) {
      const walk = { count: 0, realRoot, dir, objects: [] as ObjectInfo[], vanished: 0 };
      await this.#walk(this.#path(base), base, 0, walk);
      objects.splice(0, objects.length, ...walk.objects);
      if (walk.vanished === 0) break;
    }
    objects.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return { objects, storeNow: this.#now() };
  }

  async get(key: string, maxBytes: number): Promise<Uint8Array | undefined> {
    this.#checkKey(key);
    const path = this.#path(key);
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(path); // before open: opening a FIFO would block
    } catch (err) {
      if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) {
        return undefined;
      }
      throw this.#fsError(err, "read", key);
    }
    if (!info.isFile) return undefined; // a folder is not an object
    try {
      await this.#assertInside(path, key);
    } catch (err) {
      // deleted between the stat and the check (a heartbeat rotating): not there
      if (err instanceof RegistryError && err.cause instanceof Deno.errors.NotFound) {
        return undefined;
      }
      throw err;
    }
    if (info.size > maxBytes) throw tooBig(key, info.size, maxBytes);
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true });
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return undefined; // deleted meanwhile
      throw this.#fsError(err, "read", key);
    }
    try {
      return await readAtMost(file, key, maxBytes);
    } catch (err) {
      if (err instanceof RangeError) throw err;
      throw this.#fsError(err, "read", key);
    } finally {
      file.close();
    }
  }

  async put(key: string, body: Uint8Array): Promise<void> {
    this.#checkKey(key);
    const { path, tmp } = await this.#prepareWrite(key, body);
    try {
      await Deno.rename(tmp, path); // atomic: readers see the old or the new body, whole
    } catch (err) {
      await this.#removeTemp(tmp);
      throw this.#fsError(err, "write", key);
    }
  }

  async createIfAbsent(key: string, body: Uint8Array): Promise<CreateOutcome> {
    if (this.#ignoreConditions) {
      await this.put(key, body);
      return "created";
    }
    this.#checkKey(key);
    const { path, tmp } = await this.#prepareWrite(key, body);
    try {
      await Deno.link(tmp, path); // fails when the target exists: one creator wins
      return "created";
    } catch (err) {
      if (err instanceof Deno.errors.AlreadyExists) return "exists";
      throw this.#fsError(err, "create", key);
    } finally {
      await this.#removeTemp(tmp);
    }
  }

  async delete(key: string): Promise<void> {
    this.#checkKey(key);
    const path = this.#path(key);
    let info: Deno.FileInfo;
    try {
      info = await Deno.lstat(path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) return;
      throw this.#fsError(err, "delete", key);
    }
    if (info.isDirectory) return; // a folder is not an object
    await this.#assertInside(parentOf(path), key);
    try {
      await Deno.remove(path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return;
      throw this.#fsError(err, "delete", key);
    }
  }

  close(): void {}

  #checkKey(key: string): void {
    assertKey(key);
    if (key.split("/").some((seg) => seg.startsWith(TEMP_PREFIX))) {
      throw new TypeError(
        `invalid registry key ${
          JSON.stringify(key)
        }: expected no segment starting with "${TEMP_PREFIX}"`,
      );
    }
  }

  #path(rel: string): string {
    return this.root === "/" ? `/${rel}` : `${this.root}/${rel}`.replace(/\/$/, "");
  }

  /** Creates the key's folder, checks it stays inside the root, writes the temp file. */
  async #prepareWrite(key: string, body: Uint8Array): Promise<{ path: string; tmp: string }> {
    const path = this.#path(key);
    const dir = parentOf(path);
    try {
      await Deno.mkdir(dir, { recursive: true });
    } catch (err) {
      throw this.#fsError(err, "write", key);
    }
    await this.#assertInside(dir, key);
    const tmp = `${dir}/${TEMP_PREFIX}${crypto.randomUUID()}`;
    try {
      await writeNew(tmp, body);
    } catch (err) {
      await this.#removeTemp(tmp);
      throw this.#fsError(err, "write", key);
    }
    return { path, tmp };
  }

  async #removeTemp(tmp: string): Promise<void> {
    try {
      await Deno.remove(tmp);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return;
      this.#log.warn("could not remove a temp file of the registry", { path: tmp, error: err });
    }
  }

  async #resolveRoot(): Promise<string | undefined> {
    if (this.#realRoot !== undefined) return this.#realRoot;
    try {
      this.#realRoot = await Deno.realPath(this.root);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return undefined; // nothing written yet
      throw this.#fsError(err, "open", "");
    }
    return this.#realRoot;
  }

  /** Throws unless `path` (after resolving symlinks) lies inside the root folder. */
  async #assertInside(path: string, key: string): Promise<void> {
    const realRoot = await this.#resolveRoot();
    let real: string;
    try {
      real = await Deno.realPath(path);
    } catch (err) {
      throw this.#fsError(err, "resolve", key);
    }
    if (realRoot === undefined || !isInside(real, realRoot)) {
      throw new RegistryError(
        `registry key "${key}" resolves to ${real}, outside the registry folder ${this.root}`,
        "unsafe-path",
      );
    }
  }

  async #walk(
    path: string,
    rel: string,
    depth: number,
    walk: { count: number; realRoot: string; dir: string; objects: ObjectInfo[]; vanished: number },
  ): Promise<void> {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(path));
    } catch (err) {
      if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) return;
      throw this.#fsError(err, "list", rel);
    }
    for (const e of entries) {
      if (++walk.count > MAX_ENTRIES) {
        throw new RegistryError(
          `registry folder ${this.root} holds more than ${MAX_ENTRIES} entries: expected a small registry`,
          "too-many-objects",
        );
      }
      if (e.name.startsWith(TEMP_PREFIX)) continue; // a write in flight
      const key = rel + e.name;
      const full = `${path}/${e.name}`;
      if (e.isDirectory) {
        const sub = key + "/";
        if (!sub.startsWith(walk.dir) && !walk.dir.startsWith(sub)) continue;
        if (depth + 1 >= MAX_DEPTH) {
          this.#log.warn("skipping registry folder nested too deep", {
            key: sub,
            maxDepth: MAX_DEPTH,
          });
          continue;
        }
        await this.#walk(full, sub, depth + 1, walk);
        continue;
      }
      if (!key.startsWith(walk.dir)) continue;
      const info = await this.#objectInfo(full, key, e, walk.realRoot);
      if (info === "vanished") walk.vanished++;
      else if (info) walk.objects.push(info);
    }
  }

  /** The listing entry of a file, or undefined (with a warning) when it is not an object. */
  async #objectInfo(
    full: string,
    key: string,
    e: Deno.DirEntry,
    realRoot: string,
  ): Promise<ObjectInfo | "vanished" | undefined> {
    try {
      if (e.isSymlink) {
        const real = await Deno.realPath(full);
        if (!isInside(real, realRoot)) {
          this.#log.warn("skipping registry entry: a symlink leading outside the folder", { key });
          return undefined;
        }
      }
      const st = await Deno.stat(full);
      if (!st.isFile) {
        this.#log.warn("skipping registry entry: not a regular file", { key });
        return undefined;
      }
      return { key, lastModified: st.mtime ?? new Date(0), size: st.size };
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        if (e.isSymlink) {
          this.#log.warn("skipping registry entry: a dangling symlink", { key });
          return undefined;
        }
        return "vanished"; // deleted between readDir and stat
      }
      throw this.#fsError(err, "list", key);
    }
  }

  #fsError(err: unknown, op: string, key: string): RegistryError {
    const what = key === "" ? this.root : `"${key}" in ${this.root}`;
    const why = describe(err);
    const code = (err as { code?: string }).code;
    const reason = err instanceof Deno.errors.PermissionDenied || code === "EACCES"
      ? "access-denied"
      : code === "EROFS"
      ? "read-only"
      : err instanceof Deno.errors.NotADirectory
      ? "not-a-folder"
      : "io";
    return new RegistryError(`cannot ${op} registry object ${what}: ${why}`, reason, {
      cause: err,
    });
  }
}

function parentOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

function isInside(real: string, realRoot: string): boolean {
  return real === realRoot || real.startsWith(realRoot === "/" ? "/" : realRoot + "/");
}

/** Writes `body` to a file that must not exist yet. */
async function writeNew(path: string, body: Uint8Array): Promise<void> {
  const file = await Deno.open(path, { write: true, createNew: true, mode: 0o644 });
  try {
    let off = 0;
    while (off < body.length) off += await file.write(body.subarray(off));
  } finally {
    file.close();
  }
}

/** Reads a whole file of at most `maxBytes` (it may have grown since it was stat'ed). */
async function readAtMost(file: Deno.FsFile, key: string, maxBytes: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let n = 0;
  while (n <= maxBytes) { // each read returns at least one byte, or null at the end
    const chunk = new Uint8Array(Math.min(64 * 1024, maxBytes + 1 - n));
    const got = await file.read(chunk);
    if (got === null) break;
    chunks.push(chunk.subarray(0, got));
    n += got;
  }
  if (n > maxBytes) throw tooBig(key, n, maxBytes);
  return concatBytes(chunks);
}
