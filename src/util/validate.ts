/**
 * Validators of names and addresses, shared by the command line, the registry layout,
 * consul's argv and elect. Pure.
 */
import { isIPv6 } from "node:net";

const NODE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
export const IPV4_RE =
  /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** Why a node name is invalid, or undefined when it is fine. */
export function nodeNameProblem(name: string): string | undefined {
  if (NODE_RE.test(name)) return undefined;
  return "expected 1-128 characters of letters, digits, '.', '_' or '-', starting with a letter or digit";
}

/** True when `s` is a valid IPv4 or IPv6 literal (0.0.0.0 allowed: for bind addresses). */
export function isIpLiteral(s: string): boolean {
  return IPV4_RE.test(s) || (isIPv6(s) && !s.includes("%"));
}
