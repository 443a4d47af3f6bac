/**
 * Local state in <data-dir>: the gem's mode file (`mode`: exactly "server" or "agent", no
 * newline, as the gem writes and reads it) and the server place this node holds
 * (`place.json`). Every write is atomic (temp file, fsync, rename), so a crash never leaves a
 * half-written file.
 *
 * Who recorded the mode decides whether `run` keeps it, as the gem's `run` kept any recorded
 * mode: a mode auto-consul decided itself carries the marker `mode.decided` and is decided
 * again by `run`; a mode without it (written by the gem's set_mode/set_server/set_agent, by
 * hand, or by our set_server/set_agent) is kept. Earlier auto-consul versions wrote the mode
 * with a trailing newline (which the gem rejects) and marked hand-set modes `mode.explicit`:
 * such a file counts as decided unless that marker is there.
 */
import { LocalStateError } from "../errors.ts";
import { writeStateFile } from "../util/atomic.ts";
import type { HeldPlace } from "./places.ts";

export type Mode = "server" | "agent";

export const MODE_FILE = "mode";
export const PLACE_FILE = "place.json";
/** Present when auto-consul decided the recorded mode itself (`run`, `set_mode`). */
export const DECIDED_FILE = "mode.decided";
/** Earlier versions' marker of a mode set by hand (read for upgrades, no longer written). */
export const EXPLICIT_FILE = "mode.explicit";

async function readText(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

/** The mode file's bytes as the gem writes them: "server" or "agent", no newline. */
export function modeFileText(mode: Mode): string {
  return mode;
}

/** Parses a mode file's text (a trailing newline tolerated); undefined when it is no mode. */
export function parseModeText(text: string): Mode | undefined {
  const v = text.replace(/\r?\n$/, "");
  return v === "server" || v === "agent" ? v : undefined;
}

/**
 * Pure: whether `run` keeps a recorded mode (true) or decides again (false), from the file's
 * text and the markers present. Kept: the gem's exact bytes without our `mode.decided`, or an
 * earlier version's hand-set mark. Decided again: our marker, or an earlier version's own
 * decision (trailing newline, no hand-set mark).
 */
export function modeIsKept(
  text: string,
  markers: { decided: boolean; legacyExplicit: boolean },
): boolean {
  if (markers.legacyExplicit) return true;
  if (markers.decided) return false;
  return !/\n$/.test(text);
}

/** The recorded mode; undefined when none. A bad file is an error naming it. */
export async function readMode(dataDir: string): Promise<Mode | undefined> {
  const path = `${dataDir}/${MODE_FILE}`;
  const text = await readText(path);
  if (text === undefined) return undefined;
  const mode = parseModeText(text);
  if (mode) return mode;
  const v = text.replace(/\r?\n$/, "");
  throw new LocalStateError(
    `mode file ${path} holds ${JSON.stringify(v.slice(0, 40))}: expected "server" or "agent" ` +
      `(fix it with set_server or set_agent, or remove it to decide afresh)`,
  );
}

/**
 * Records the mode in the gem's bytes. `pinned` (set_server/set_agent): `run` keeps it;
 * otherwise auto-consul decided it and marks it so (the marker is written first: a crash in
 * between leaves a mode `run` decides again, never a decision that looks pinned).
 */
export async function writeMode(dataDir: string, mode: Mode, pinned = false): Promise<void> {
  if (pinned) {
    await removeIfPresent(`${dataDir}/${DECIDED_FILE}`);
  } else {
    await writeStateFile(`${dataDir}/${DECIDED_FILE}`, "decided by auto-consul\n");
  }
  await removeIfPresent(`${dataDir}/${EXPLICIT_FILE}`);
  await writeStateFile(`${dataDir}/${MODE_FILE}`, modeFileText(mode));
}

/**
 * True when a mode is recorded that auto-consul did not decide itself (the gem, a hand, or
 * set_server/set_agent): `run` keeps it, as the gem's `run` did.
 */
export async function modeIsExplicit(dataDir: string): Promise<boolean> {
  const text = await readText(`${dataDir}/${MODE_FILE}`);
  if (text === undefined || parseModeText(text) === undefined) return false;
  const [decided, legacyExplicit] = await Promise.all([
    exists(`${dataDir}/${DECIDED_FILE}`),
    exists(`${dataDir}/${EXPLICIT_FILE}`),
  ]);
  return modeIsKept(text, { decided, legacyExplicit });
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
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
  throw new LocalStateError(
    `place file ${path} is not {"place": K, "epoch": E}: remove it to decide afresh`,
  );
}

export async function writePlace(dataDir: string, held: HeldPlace | undefined): Promise<void> {
  const path = `${dataDir}/${PLACE_FILE}`;
  if (held === undefined) return await removeIfPresent(path);
  await writeStateFile(path, JSON.stringify(held) + "\n");
}

/** consul's client data dir of auto-consul versions before the gem's layout was restored. */
export const OLD_CLIENT_DIR = "client";
/** The gem's: consul data of an agent (client) in `<data-dir>/agent`. */
export const AGENT_DIR = "agent";

/**
 * Moves an earlier auto-consul's `<data-dir>/client` to the gem's `<data-dir>/agent` once,
 * so an upgraded client keeps its consul node ID. "moved" when it did; "both" when both
 * exist (nothing moved: `agent` is used); "none" when there was nothing to move.
 */
export async function migrateClientDataDir(dataDir: string): Promise<"moved" | "both" | "none"> {
  const from = `${dataDir}/${OLD_CLIENT_DIR}`;
  const to = `${dataDir}/${AGENT_DIR}`;
  let isDir = false;
  try {
    isDir = (await Deno.lstat(from)).isDirectory;
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  if (!isDir) return "none";
  if (await exists(to)) return "both";
  await Deno.rename(from, to);
  return "moved";
}
