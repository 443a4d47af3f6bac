/**
 * The registry's key layout and the validation of what is read from it. Pure functions.
 *
 * Gem-compatible heartbeats (kept exactly, so old and new nodes share a bucket):
 *   <prefix>/servers/<UTC YYYYmmddHHMMSS>-<node>   body: the node's join IP, plain text
 *   <prefix>/agents/<UTC YYYYmmddHHMMSS>-<node>
 * Node names may contain "-": the key is split on the first "-" only.
 */
import { isIPv6 } from "node:net";
import { IPV4_RE, nodeNameProblem } from "../util/validate.ts";

export type HeartbeatDir = "servers" | "agents";
export const HEARTBEAT_DIRS: readonly HeartbeatDir[] = ["servers", "agents"];

/** Largest heartbeat body read (an IPv6 address is at most 45 characters). */
export const MAX_HEARTBEAT_BODY = 256;

const STAMP_RE = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/;

/** The gem's stamp: UTC YYYYmmddHHMMSS. */
export function formatStamp(d: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}` +
    `${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
}

/** Parses a gem stamp; undefined when it is not a real UTC date-time. */
export function parseStamp(s: string): Date | undefined {
  const m = STAMP_RE.exec(s);
  if (!m) return undefined;
  const [y, mo, d, h, mi, se] = m.slice(1).map(Number);
  const date = new Date(Date.UTC(y, mo - 1, d, h, mi, se));
  if (
    date.getUTCFullYear() !== y || date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d ||
    h > 23 || mi > 59 || se > 59
  ) return undefined;
  return date;
}

/** The key of a heartbeat, relative to the prefix. */
export function heartbeatKey(dir: HeartbeatDir, at: Date, node: string): string {
  return `${dir}/${formatStamp(at)}-${node}`;
}

export interface ParsedKey {
  dir: HeartbeatDir;
  stamp: Date;
  node: string;
}

/** Parses "servers/<stamp>-<node>" (split on the first "-" only); undefined when malformed. */
export function parseHeartbeatKey(key: string): ParsedKey | undefined {
  const slash = key.indexOf("/");
  if (slash < 0) return undefined;
  const dir = key.slice(0, slash);
  if (dir !== "servers" && dir !== "agents") return undefined;
  const name = key.slice(slash + 1);
  const dash = name.indexOf("-");
  if (dash !== 14) return undefined;
  const stamp = parseStamp(name.slice(0, dash));
  const node = name.slice(dash + 1);
  if (!stamp || nodeNameProblem(node) !== undefined) return undefined;
  return { dir, stamp, node };
}

/**
 * Normalises a join address read from the registry or given by the user. Returns the
 * address, or undefined when it is not a usable unicast IP (0.0.0.0, ::, garbage).
 */
export function parseJoinAddress(text: string): string | undefined {
  const s = text.trim();
  if (IPV4_RE.test(s)) return s === "0.0.0.0" || s.startsWith("255.") ? undefined : s;
  if (s.length <= 45 && isIPv6(s) && !s.includes("%")) {
    const lower = s.toLowerCase();
    if (lower === "::" || lower.startsWith("ff")) return undefined;
    return lower;
  }
  return undefined;
}

/** "host:port" for an address, bracketing IPv6. */
export function hostPort(addr: string, port: number): string {
  return addr.includes(":") ? `[${addr}]:${port}` : `${addr}:${port}`;
}

/**
 * Server place claims: `slots/<place>/<epoch>`, body the claiming node's name (see
 * cluster/places.ts for what they mean).
 */
export const SLOTS_DIR = "slots";
const EPOCH_WIDTH = 10;
/** Epochs are canonical decimals: 10 digits zero-padded, or more digits without a leading zero. */
const SLOT_KEY_RE = /^slots\/(0|[1-9]\d?)\/(\d{10}|[1-9]\d{10,14})$/;

export function slotKey(place: number, epoch: number): string {
  return `${SLOTS_DIR}/${place}/${String(epoch).padStart(EPOCH_WIDTH, "0")}`;
}

/**
 * Parses "slots/<place>/<epoch>". Only the canonical spelling is accepted ("slots/00/..." or
 * an 11-digit epoch with a leading zero would name the same claim as another key, and a
 * create-if-absent of one would not see the other). Epochs of up to 15 digits are read: far
 * more than any place's claims can reach (see MAX_EPOCH_LEAD).
 */
export function parseSlotKey(key: string): { place: number; epoch: number } | undefined {
  const m = SLOT_KEY_RE.exec(key);
  if (!m) return undefined;
  const epoch = Number(m[2]);
  if (epoch < 1) return undefined;
  return { place: Number(m[1]), epoch };
}
