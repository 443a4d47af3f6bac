/**
 * Local state in <data-dir>: the gem's mode file (`mode`: "server" or "agent") and the server
 * place this node holds (`place.json`). Every write is atomic (temp file, fsync, rename), so a
 * crash never leaves a half-written file.
 */
import type { HeldPlace } from "./places.ts";

export type Mode = "server" | "agent";

export const MODE_FILE = "mode";
export const PLACE_FILE = "place.json";
/** Present when the mode was set by hand (set_server / set_agent): `run` then respects it. */
export const EXPLICIT_FILE = "mode.explicit";

export async function writeAtomic(path: string, text: string, mode = 0o644): Promise<void> {
  const dir = path.slice(0, path.lastIndexOf("/")) || ".";
  await Deno.mkdir(dir, { recursive: true });
  const tmp = `${dir}/.${path.slice(dir.length + 1)}.${crypto.randomUUID()}.tmp`;
  try {
    const f = await Deno.open(tmp, { write: true, createNew: true, mode });
    try {
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

async function readText(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

/** The recorded mode; undefined when none. A bad file is an error naming it. */
export async function readMode(dataDir: string): Promise<Mode | undefined> {
  const path = `${dataDir}/${MODE_FILE}`;
  const text = await readText(path);
  if (text === undefined) return undefined;
  const v = text.replace(/\r?\n$/, "");
  if (v === "server" || v === "agent") return v;
  throw new TypeError(`mode file ${path} holds "${v.slice(0, 40)}": expected "server" or "agent"`);
}

export async function writeMode(dataDir: string, mode: Mode, explicit = false): Promise<void> {
  await writeAtomic(`${dataDir}/${MODE_FILE}`, `${mode}\n`);
  if (explicit) await writeAtomic(`${dataDir}/${EXPLICIT_FILE}`, "set by hand\n");
  else await removeIfPresent(`${dataDir}/${EXPLICIT_FILE}`);
}

/** True when the recorded mode was set by hand with set_server or set_agent. */
export async function modeIsExplicit(dataDir: string): Promise<boolean> {
  try {
    await Deno.stat(`${dataDir}/${EXPLICIT_FILE}`);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

async function removeIfPresent(path: string): Promise<void> {
  await Deno.remove(path).catch((err) => {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  });
}

export async function readPlace(dataDir: string): Promise<HeldPlace | undefined> {
  const path = `${dataDir}/${PLACE_FILE}`;
  const text = await readText(path);
  if (text === undefined) return undefined;
  try {
    const v = JSON.parse(text);
    if (Number.isInteger(v.place) && Number.isInteger(v.epoch) && v.place >= 0 && v.epoch >= 1) {
      return { place: v.place, epoch: v.epoch };
    }
  } catch { /* fall through */ }
  throw new TypeError(
    `place file ${path} is not {"place": K, "epoch": E}: remove it to decide afresh`,
  );
}

export async function writePlace(dataDir: string, held: HeldPlace | undefined): Promise<void> {
  const path = `${dataDir}/${PLACE_FILE}`;
  if (held === undefined) return await removeIfPresent(path);
  await writeAtomic(path, JSON.stringify(held) + "\n");
}
