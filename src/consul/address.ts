/**
 * The address of a consul agent's HTTP API, as given in `CONSUL_HTTP_ADDR` or `--http-addr`.
 * Pure: parses and validates, never connects.
 *
 * Accepted (the forms consul's own CLI accepts over TCP):
 *   127.0.0.1:8500   http://127.0.0.1:8500   https://consul.example:8501
 *   127.0.0.1        (port 8500; 8501 with https://)   [::1]:8500   ::1
 * A single trailing "/" is allowed. Unix sockets (`unix:///path`) are not supported.
 */
import { isIP, isIPv6 } from "node:net";

export type ConsulScheme = "http" | "https";

export interface ConsulAddress {
  scheme: ConsulScheme;
  /** Host name or IP literal, IPv6 without brackets. */
  host: string;
  port: number;
  /** "host:port", IPv6 bracketed. */
  hostPort: string;
  /** "scheme://host:port", no trailing slash: prefix of every API path. */
  baseUrl: string;
}

/** Port used when none is given: consul's defaults for HTTP and HTTPS. */
export const DEFAULT_PORTS: Readonly<Record<ConsulScheme, number>> = { http: 8500, https: 8501 };

const EXPECTED = 'expected "[http://|https://]host[:port]", e.g. "127.0.0.1:8500"';
const SCHEME_RE = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//;
const HOSTNAME_RE =
  /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** Parses a consul HTTP address; throws TypeError naming the bad value and what was expected. */
export function parseConsulAddress(value: string): ConsulAddress {
  const bad = (why: string): TypeError =>
    new TypeError(`invalid consul address ${JSON.stringify(value)}: ${why}`);
  let rest = value.trim();
  if (rest === "") throw bad(`empty; ${EXPECTED}`);

  let scheme: ConsulScheme = "http";
  const m = SCHEME_RE.exec(rest);
  if (m) {
    const given = m[1].toLowerCase();
    if (given === "unix") throw bad("unix sockets are not supported; give a TCP host:port");
    if (given !== "http" && given !== "https") {
      throw bad(`unknown scheme "${m[1]}", expected http:// or https://`);
    }
    scheme = given;
    rest = rest.slice(m[0].length);
  }
  if (rest.endsWith("/")) rest = rest.slice(0, -1);
  if (/[/?#@\s]/.test(rest)) throw bad(`only a host and port are allowed; ${EXPECTED}`);
  if (rest === "") throw bad(`no host; ${EXPECTED}`);

  let host: string;
  let portText: string | undefined;
  if (rest.startsWith("[")) {
    const close = rest.indexOf("]");
    if (close < 0) throw bad("unclosed '[' around an IPv6 address");
    host = rest.slice(1, close);
    const after = rest.slice(close + 1);
    if (after !== "" && !after.startsWith(":")) throw bad(`unexpected text after ']'`);
    if (after !== "") portText = after.slice(1);
    if (!isIPv6(host)) throw bad(`"${host}" is not an IPv6 address`);
  } else if (isIPv6(rest)) {
    host = rest; // bare IPv6 literal: no port can be given without brackets
  } else {
    const colon = rest.lastIndexOf(":");
    host = colon < 0 ? rest : rest.slice(0, colon);
    if (colon >= 0) portText = rest.slice(colon + 1);
    const dotted = /^[\d.]+$/.test(host);
    if (dotted ? isIP(host) !== 4 : !HOSTNAME_RE.test(host)) {
      throw bad(`"${host}" is not a valid host name or IP address`);
    }
  }

  const port = portText === undefined ? DEFAULT_PORTS[scheme] : Number(portText);
  if (portText !== undefined && (!/^\d{1,5}$/.test(portText) || port < 1 || port > 65535)) {
    throw bad(`port "${portText}" is not a number from 1 to 65535`);
  }
  host = host.toLowerCase();
  const hostPort = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
  return { scheme, host, port, hostPort, baseUrl: `${scheme}://${hostPort}` };
}
