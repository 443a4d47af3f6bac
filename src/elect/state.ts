/**
 * Local state of `elect` for one service: `<data-dir>/elect-<service>.json` holds the session
 * to reuse across `--once` runs, the role (and master) of the last round, and the role whose
 * change the hooks have handled, against which a role change (and so a hook) is judged. Written atomically; a bad file is ignored with a
 * warning (the session is then found again through the lock, see lock.ts).
 */
import { writeStateFile } from "../util/atomic.ts";
import type { LockHolder } from "./lock.ts";
import { parseHolder } from "./lock.ts";
import type { Role } from "./tags.ts";

export interface ElectState {
  session?: string;
  role?: Role;
  master?: LockHolder;
  /** The role whose change hooks have handled (see hooks.ts). */
  hooked?: Role;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function statePath(dataDir: string, service: string): string {
  return `${dataDir.replace(/\/+$/, "") || "/"}/elect-${service}.json`;
}

/** Pure: the state in a file's text; throws TypeError naming what is wrong. */
export function parseState(text: string): ElectState {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new TypeError("not JSON");
  }
  if (!v || typeof v !== "object" || Array.isArray(v)) throw new TypeError("not a JSON object");
  const o = v as Record<string, unknown>;
  const out: ElectState = {};
  if (o.session !== undefined) {
    if (typeof o.session !== "string" || !UUID.test(o.session)) {
      throw new TypeError(`session ${JSON.stringify(o.session)} is not a session ID`);
    }
    out.session = o.session;
  }
  for (const k of ["role", "hooked"] as const) {
    if (o[k] === undefined) continue;
    if (o[k] !== "master" && o[k] !== "slave") {
      throw new TypeError(`${k} ${JSON.stringify(o[k])} is not "master" or "slave"`);
    }
    out[k] = o[k];
  }
  if (o.master !== undefined) out.master = parseHolder(JSON.stringify(o.master));
  return out;
}

export function formatState(s: ElectState): string {
  return JSON.stringify({ session: s.session, role: s.role, master: s.master, hooked: s.hooked }) +
    "\n";
}

export function sameState(a: ElectState, b: ElectState): boolean {
  return formatState(a) === formatState(b);
}

/** The state in `path`; `{}` when missing; `{}` plus a problem when unreadable or bad. */
export async function readState(path: string): Promise<{ state: ElectState; problem?: string }> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return { state: {} };
    return { state: {}, problem: `cannot read ${path}: ${(err as Error).message}` };
  }
  try {
    return { state: parseState(text) };
  } catch (err) {
    return { state: {}, problem: `ignoring ${path}: ${(err as Error).message}` };
  }
}

/** Writes the state atomically; an error names the file and suggests --data-dir. */
export async function writeState(path: string, state: ElectState): Promise<void> {
  try {
    await writeStateFile(path, formatState(state));
  } catch (err) {
    throw new Error(
      `cannot write elect state ${path}: ${(err as Error).message} (give a writable --data-dir)`,
      { cause: err },
    );
  }
}
