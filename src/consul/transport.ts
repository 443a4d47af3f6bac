/**
 * One HTTP exchange with a consul agent: the address, the ACL token (in `X-Consul-Token` only,
 * redacted from errors), the timeout and the caller's signal, and consul's answers turned into
 * `ConsulUnreachableError` (no answer) or `ConsulError` (an HTTP error). `ConsulClient` builds
 * its endpoints on it.
 */
import { ConsulError, ConsulUnreachableError, errorText } from "../errors.ts";
import { registerSecret } from "../log.ts";
import { parseConsulAddress } from "./address.ts";
import type { BlockingOptions, CallOptions } from "./types.ts";

export interface ConsulClientOptions {
  /** Anything `parseConsulAddress` accepts: "http://127.0.0.1:8500", "127.0.0.1:8500", ... */
  baseUrl: string;
  /** ACL token, sent as `X-Consul-Token`. */
  token?: string;
  /** Per-call timeout in ms (default 10 000). Blocking queries get their wait on top. */
  timeoutMs?: number;
  /** Injectable fetch (tests; src/consul/connect.ts for TLS settings and unix sockets). */
  fetch?: typeof fetch;
  /** What messages call the agent (default: the address's host:port). */
  label?: string;
  /** Headers sent on every request (basic auth). */
  headers?: Record<string, string>;
  /** Query parameters added to every request (`ns` for a namespace). */
  query?: Record<string, string>;
}

/** The raw answer of `request`. */
export interface Reply {
  status: number;
  headers: Headers;
  text: string;
}

export type Query = Record<string, string | number | boolean | undefined>;

export interface RequestOptions extends CallOptions {
  query?: Query;
  /** JSON-encoded unless already a string or bytes. */
  body?: unknown;
  /** Statuses returned to the caller instead of thrown (e.g. 404). */
  allow?: number[];
  /** Extra time on top of the timeout (blocking queries). */
  extraMs?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const MAX_BODY_IN_MESSAGE = 200;

export class ConsulHttp {
  /** "http://host:port", no trailing slash. */
  readonly baseUrl: string;
  /** "host:port", for messages. */
  readonly address: string;
  readonly timeoutMs: number;
  #token?: string;
  #fetch: typeof fetch;
  #headers: Record<string, string>;
  #query: Record<string, string>;

  constructor(opts: ConsulClientOptions) {
    const addr = parseConsulAddress(opts.baseUrl);
    this.baseUrl = addr.baseUrl;
    this.address = opts.label ?? addr.hostPort;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!(this.timeoutMs > 0)) {
      throw new RangeError(`invalid timeoutMs ${opts.timeoutMs}: expected a positive number`);
    }
    this.#token = opts.token || undefined;
    registerSecret(this.#token);
    this.#fetch = opts.fetch ?? fetch;
    this.#headers = { ...opts.headers };
    this.#query = { ...opts.query };
  }

  async json<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    return parse<T>(await this.request(method, path, opts), method, path);
  }

  /**
   * One HTTP exchange. Resolves with any 2xx reply or an `allow`ed status; throws
   * ConsulUnreachableError when consul does not answer in time, ConsulError otherwise.
   */
  async request(method: string, path: string, opts: RequestOptions = {}): Promise<Reply> {
    const what = `${method} ${path}`;
    const url = new URL(this.baseUrl + path);
    for (const [k, v] of Object.entries({ ...this.#query, ...opts.query })) {
      if (v !== undefined && v !== false) url.searchParams.set(k, String(v));
    }
    const headers = new Headers(this.#headers);
    if (this.#token) headers.set("X-Consul-Token", this.#token);
    let body: BodyInit | undefined;
    if (opts.body !== undefined) {
      if (typeof opts.body === "string") body = opts.body;
      else if (opts.body instanceof Uint8Array) body = opts.body as Uint8Array<ArrayBuffer>;
      else {
        body = JSON.stringify(opts.body);
        headers.set("Content-Type", "application/json");
      }
    }

    const limitMs = (opts.timeoutMs ?? this.timeoutMs) + (opts.extraMs ?? 0);
    const timeout = new AbortController();
    const timer = setTimeout(
      () => timeout.abort(new DOMException("consul request timed out", "TimeoutError")),
      limitMs,
    );
    const signal = opts.signal ? AbortSignal.any([timeout.signal, opts.signal]) : timeout.signal;
    let status: number;
    let respHeaders: Headers;
    let text: string;
    try {
      const resp = await this.#fetch(url, { method, headers, body, signal });
      status = resp.status;
      respHeaders = resp.headers;
      text = await resp.text();
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      if (timeout.signal.aborted) {
        throw new ConsulUnreachableError(
          `consul at ${this.address} did not answer ${what} within ${limitMs} ms`,
          { cause: err },
        );
      }
      throw new ConsulUnreachableError(
        `consul at ${this.address} is unreachable (${what}): ${this.#redact(errorText(err))}`,
        { cause: err },
      );
    } finally {
      clearTimeout(timer);
    }

    if ((status >= 200 && status < 300) || opts.allow?.includes(status)) {
      return { status, headers: respHeaders, text };
    }
    const safeBody = this.#redact(text);
    const short = oneLine(safeBody);
    if (status === 403 && /permission denied|acl not found/i.test(text)) {
      const hint = this.#token
        ? "the ACL token is unknown or lacks the permission"
        : "no ACL token was given (set CONSUL_HTTP_TOKEN or --token-file)";
      throw new ConsulError(
        `consul ${what} was refused by ACLs: 403 ${short}: ${hint}`,
        status,
        safeBody,
      );
    }
    throw new ConsulError(`consul ${what} failed: ${status} ${short}`.trimEnd(), status, safeBody);
  }

  #redact(text: string): string {
    return this.#token ? text.split(this.#token).join("[redacted]") : text;
  }
}

export function blocking(opts: BlockingOptions): RequestOptions {
  if (opts.index === undefined && opts.waitMs === undefined) return { ...opts };
  const waitMs = opts.waitMs ?? 5 * 60_000;
  return {
    ...opts,
    query: { index: opts.index, wait: `${Math.max(1, Math.round(waitMs))}ms` },
    // consul adds up to wait/16 of jitter to a blocking query
    extraMs: waitMs + waitMs / 16,
  };
}

export function keyPath(key: string): string {
  return key.split("/").map(encodeURIComponent).join("/");
}

export function indexOf(reply: Reply): number {
  const n = Number(reply.headers.get("X-Consul-Index") ?? "0");
  return Number.isFinite(n) ? n : 0;
}

export function parse<T>(reply: Reply, method: string, what: string): T {
  try {
    return JSON.parse(reply.text) as T;
  } catch {
    throw new ConsulError(
      `consul ${method} ${what} answered ${reply.status} with a body that is not JSON: ${
        oneLine(reply.text)
      }`,
      reply.status,
      reply.text,
    );
  }
}

function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > MAX_BODY_IN_MESSAGE ? `${flat.slice(0, MAX_BODY_IN_MESSAGE)}…` : flat;
}
