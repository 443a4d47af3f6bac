/**
 * Validators of single flag and environment values: each takes `{ value, from }` (from names
 * the flag or variable for the message) and returns the typed value or throws a UsageError.
 * Pure.
 */
import { UsageError } from "../errors.ts";
import { type Level, type LogFormat, parseLevel } from "../log.ts";
import { isIpLiteral, nodeNameProblem } from "../util/validate.ts";

export function ip(v: { value?: string; from: string }): string | undefined {
  if (v.value === undefined) return undefined;
  if (!isIpLiteral(v.value)) {
    throw new UsageError(`invalid ${v.from} "${v.value}": expected an IPv4 or IPv6 address`);
  }
  return v.value;
}

export function nodeProblem(name: string): string | undefined {
  return nodeNameProblem(name);
}

export function path(v: { value?: string; from: string }): string | undefined {
  if (v.value === undefined) return undefined;
  if (v.value.includes("\0")) throw new UsageError(`invalid ${v.from}: path contains a NUL byte`);
  return v.value;
}

export function seconds(
  v: { value?: string; from: string },
  def: number,
  min: number,
  max: number,
): number {
  if (v.value === undefined) return def;
  if (!/^\d+(\.\d+)?$/.test(v.value.trim())) {
    throw new UsageError(
      `invalid ${v.from} "${v.value}": expected a number of seconds from ${min} to ${max}`,
    );
  }
  const n = Number(v.value);
  if (n < min || n > max) {
    throw new UsageError(
      `invalid ${v.from} "${v.value}": expected a number of seconds from ${min} to ${max}`,
    );
  }
  return n;
}

export function integer(
  v: { value?: string; from: string },
  def: number,
  min: number,
  max: number,
): number {
  if (v.value === undefined) return def;
  const n = Number(v.value);
  if (!/^\d+$/.test(v.value.trim()) || n < min || n > max) {
    throw new UsageError(
      `invalid ${v.from} "${v.value}": expected a whole number from ${min} to ${max}`,
    );
  }
  return n;
}

export function datacenter(v: { value?: string; from: string }): string | undefined {
  if (v.value === undefined) return undefined;
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(v.value)) {
    throw new UsageError(`invalid ${v.from} "${v.value}": expected letters, digits, '_' or '-'`);
  }
  return v.value;
}

export function endpoint(v: { value?: string; from: string }): string | undefined {
  if (v.value === undefined) return undefined;
  let u: URL;
  try {
    u = new URL(v.value);
  } catch {
    throw new UsageError(`invalid ${v.from} "${v.value}": expected an http:// or https:// URL`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw new UsageError(`invalid ${v.from} "${v.value}": expected an http:// or https:// URL`);
  }
  return v.value;
}

export function level(v: { value?: string; from: string }): Level {
  if (v.value === undefined) return "info";
  try {
    return parseLevel(v.value);
  } catch {
    throw new UsageError(`invalid ${v.from} "${v.value}": expected debug, info, warn or error`);
  }
}

export function logFormat(v: { value?: string; from: string }): LogFormat {
  if (v.value === undefined || v.value === "text") return "text";
  if (v.value === "json") return "json";
  throw new UsageError(`invalid ${v.from} "${v.value}": expected text or json`);
}

export function tag(v: { value?: string; from: string }, def: string): string {
  const t = v.value ?? def;
  if (!/^[A-Za-z0-9][A-Za-z0-9._:=-]{0,62}$/.test(t)) {
    throw new UsageError(
      `invalid ${v.from} "${t}": expected a tag of letters, digits, '.', '_', ':', '=' or '-'`,
    );
  }
  return t;
}

/** A hook command line, split on whitespace (no shell: quoting is not interpreted). */
export function hook(v: { value?: string; from: string }): string[] | undefined {
  if (v.value === undefined) return undefined;
  const argv = v.value.trim().split(/\s+/).filter((s) => s !== "");
  if (argv.length === 0) throw new UsageError(`invalid ${v.from} "": expected a command`);
  return argv;
}
