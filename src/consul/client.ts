/**
 * A small client for the consul agent HTTP API (Consul 1.8 semantics): only the endpoints
 * auto-consul uses. Adapters only: every method fetches and returns data, callers decide.
 *
 * Conventions:
 * - Summaries the client builds are camelCase (`AgentSelf`, `Member`, `KvEntry`, ...).
 * - Objects a caller must send back to consul unchanged keep consul's own PascalCase JSON
 *   (`AgentService`, `ServiceRegistration`, `PreparedQuery*`, `AutopilotConfiguration`), and
 *   summaries carry `raw` where a caller may need a field not typed here.
 * - Every call has a timeout (`timeoutMs`, default 10 s; blocking queries add their wait) and
 *   takes an optional caller `signal`. A caller's abort rejects with the signal's reason.
 * - Not answering (refused, reset, timed out) → `ConsulUnreachableError`; an HTTP error →
 *   `ConsulError` with `status` and `body`. "Not found" is `undefined` where the method says so.
 * - The ACL token goes in the `X-Consul-Token` header only, and is redacted from errors.
 */
import { ConsulError, ConsulUnreachableError } from "../errors.ts";
import { registerSecret } from "../log.ts";
import { parseConsulAddress } from "./address.ts";
import {
  type AgentSelf,
  type AgentService,
  type AutopilotConfiguration,
  type AutopilotHealth,
  type BlockingOptions,
  type CallOptions,
  type CatalogNode,
  type Check,
  check,
  type CheckStatus,
  type HealthServiceOptions,
  type KvEntry,
  kvEntry,
  type KvGetResult,
  type KvPutOptions,
  type Member,
  MEMBER_STATUS,
  num,
  obj,
  optStr,
  type PreparedQuery,
  type PreparedQueryDefinition,
  type PreparedQueryResult,
  type RaftConfiguration,
  type ServiceCheckDefinition,
  type ServiceEntry,
  serviceEntry,
  type ServiceRegisterOptions,
  type ServiceRegistration,
  type SessionCreateOptions,
  type SessionInfo,
  sessionInfo,
  str,
} from "./types.ts";

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
interface Reply {
  status: number;
  headers: Headers;
  text: string;
}

type Query = Record<string, string | number | boolean | undefined>;

interface RequestOptions extends CallOptions {
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

export class ConsulClient {
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

  // ---- agent -------------------------------------------------------------------------------

  /** GET /v1/agent/self */
  async self(opts?: CallOptions): Promise<AgentSelf> {
    const raw = await this.#json<Record<string, unknown>>("GET", "/v1/agent/self", opts);
    const config = obj(raw.Config);
    const member = obj(raw.Member);
    const debug = raw.DebugConfig ? obj(raw.DebugConfig) : undefined;
    return {
      node: str(config.NodeName),
      nodeId: str(config.NodeID),
      datacenter: str(config.Datacenter),
      version: str(config.Version),
      isServer: config.Server === true,
      memberAddr: str(member.Addr),
      memberPort: num(member.Port),
      advertiseAddr: optStr(debug?.AdvertiseAddrLAN),
      advertiseAddrWan: optStr(debug?.AdvertiseAddrWAN),
      bindAddr: optStr(debug?.BindAddr),
      raw,
    };
  }

  /** GET /v1/agent/members (LAN, or WAN with `wan`). */
  async members(opts: CallOptions & { wan?: boolean } = {}): Promise<Member[]> {
    const list = await this.#json<Record<string, unknown>[]>("GET", "/v1/agent/members", {
      ...opts,
      query: { wan: opts.wan ? 1 : undefined },
    });
    return (list ?? []).map((m) => {
      const tags = (m.Tags ?? {}) as Record<string, string>;
      const statusCode = num(m.Status);
      return {
        name: str(m.Name),
        addr: str(m.Addr),
        port: num(m.Port),
        status: MEMBER_STATUS[statusCode] ?? "none",
        statusCode,
        isServer: tags.role === "consul",
        tags,
      };
    });
  }

  /** PUT /v1/agent/join/:addr — `addr` is "ip" or "ip:port" (serf LAN port, or WAN with `wan`). */
  async join(addr: string, opts: CallOptions & { wan?: boolean } = {}): Promise<void> {
    await this.#request("PUT", `/v1/agent/join/${encodeURIComponent(addr)}`, {
      ...opts,
      query: { wan: opts.wan ? 1 : undefined },
    });
  }

  /** PUT /v1/agent/leave — graceful leave; the agent then shuts down. */
  async leave(opts?: CallOptions): Promise<void> {
    await this.#request("PUT", "/v1/agent/leave", opts);
  }

  /** PUT /v1/agent/force-leave/:node — moves a failed node to "left". */
  async forceLeave(node: string, opts: CallOptions & { prune?: boolean } = {}): Promise<void> {
    await this.#request("PUT", `/v1/agent/force-leave/${encodeURIComponent(node)}`, {
      ...opts,
      query: { prune: opts.prune ? 1 : undefined },
    });
  }

  // ---- status and raft ---------------------------------------------------------------------

  /** GET /v1/status/leader — the leader's "ip:8300", undefined when there is none. */
  async leader(opts?: CallOptions): Promise<string | undefined> {
    const leader = await this.#json<string>("GET", "/v1/status/leader", opts);
    return leader ? leader : undefined;
  }

  /** GET /v1/status/peers — the raft peers' "ip:8300". */
  async peers(opts?: CallOptions): Promise<string[]> {
    return (await this.#json<string[] | null>("GET", "/v1/status/peers", opts)) ?? [];
  }

  /**
   * GET /v1/operator/raft/configuration — with `stale`, any server answers from its own copy
   * (no leader needed: without it a leaderless cluster holds the call for consul's RPC hold
   * timeout, about 7 s, then fails).
   */
  async raftConfiguration(
    opts: CallOptions & { stale?: boolean } = {},
  ): Promise<RaftConfiguration> {
    const raw = await this.#json<Record<string, unknown>>(
      "GET",
      "/v1/operator/raft/configuration",
      { ...opts, query: { stale: opts.stale ? "" : undefined } },
    );
    const servers = ((raw.Servers ?? []) as Record<string, unknown>[]).map((s) => ({
      id: str(s.ID),
      node: str(s.Node),
      address: str(s.Address),
      leader: s.Leader === true,
      voter: s.Voter === true,
      protocolVersion: str(s.ProtocolVersion),
    }));
    return { servers, index: num(raw.Index) };
  }

  /** GET /v1/operator/autopilot/health — needs a leader (a ConsulError otherwise). */
  async autopilotHealth(opts?: CallOptions): Promise<AutopilotHealth> {
    const reply = await this.#request("GET", "/v1/operator/autopilot/health", {
      ...opts,
      // consul answers 429 when the cluster is unhealthy, with the same body
      allow: [429],
    });
    const raw = parse<Record<string, unknown>>(reply, "GET", "autopilot health");
    return {
      healthy: raw.Healthy === true,
      failureTolerance: num(raw.FailureTolerance),
      servers: ((raw.Servers ?? []) as Record<string, unknown>[]).map((s) => ({
        id: str(s.ID),
        name: str(s.Name),
        address: str(s.Address),
        version: str(s.Version),
        leader: s.Leader === true,
        voter: s.Voter === true,
        healthy: s.Healthy === true,
        lastContact: str(s.LastContact),
        serfStatus: str(s.SerfStatus),
      })),
    };
  }

  /** GET /v1/catalog/nodes — every node in the catalog, with its node ID. */
  async catalogNodes(opts: CallOptions & { stale?: boolean } = {}): Promise<CatalogNode[]> {
    const list = await this.#json<Record<string, unknown>[] | null>("GET", "/v1/catalog/nodes", {
      ...opts,
      query: { stale: opts.stale ? "" : undefined },
    });
    return (list ?? []).map((n) => ({ id: str(n.ID), node: str(n.Node), address: str(n.Address) }));
  }

  /** GET /v1/operator/autopilot/configuration */
  autopilotConfiguration(opts?: CallOptions): Promise<AutopilotConfiguration> {
    return this.#json("GET", "/v1/operator/autopilot/configuration", opts);
  }

  /** PUT /v1/operator/autopilot/configuration — with `cas`, only if ModifyIndex matches. */
  async setAutopilotConfiguration(
    config: AutopilotConfiguration,
    opts: CallOptions & { cas?: number } = {},
  ): Promise<boolean> {
    return await this.#json<boolean>("PUT", "/v1/operator/autopilot/configuration", {
      ...opts,
      body: config,
      query: { cas: opts.cas },
    }) !== false;
  }

  // ---- KV ----------------------------------------------------------------------------------

  /** GET /v1/kv/:key — a blocking query when `index` is given. */
  async kvGet(key: string, opts: BlockingOptions = {}): Promise<KvGetResult> {
    const reply = await this.#request("GET", `/v1/kv/${keyPath(key)}`, {
      ...blocking(opts),
      allow: [404],
    });
    const index = indexOf(reply);
    if (reply.status === 404) return { index };
    const entry = kvEntry(parse<Record<string, unknown>[]>(reply, "GET", key)[0]);
    return { entry, value: entry.value, session: entry.session, index };
  }

  /** PUT /v1/kv/:key — false when a lock or cas condition failed. */
  async kvPut(key: string, value: string | Uint8Array, opts: KvPutOptions = {}): Promise<boolean> {
    const { acquire, release, cas, flags } = opts;
    return await this.#json<boolean>("PUT", `/v1/kv/${keyPath(key)}`, {
      ...opts,
      body: value,
      query: { acquire, release, cas, flags },
    }) === true;
  }

  /** DELETE /v1/kv/:key (the whole prefix with `recurse`) — false when a cas condition failed. */
  async kvDelete(
    key: string,
    opts: CallOptions & { recurse?: boolean; cas?: number } = {},
  ): Promise<boolean> {
    return await this.#json<boolean>("DELETE", `/v1/kv/${keyPath(key)}`, {
      ...opts,
      query: { recurse: opts.recurse ? 1 : undefined, cas: opts.cas },
    }) !== false;
  }

  /** GET /v1/kv/:prefix?recurse — every entry under the prefix ([] when none). */
  async kvList(prefix: string, opts?: CallOptions): Promise<KvEntry[]> {
    const reply = await this.#request("GET", `/v1/kv/${keyPath(prefix)}`, {
      ...opts,
      query: { recurse: 1 },
      allow: [404],
    });
    if (reply.status === 404) return [];
    return parse<Record<string, unknown>[]>(reply, "GET", prefix).map(kvEntry);
  }

  // ---- sessions ----------------------------------------------------------------------------

  /** PUT /v1/session/create — the new session's ID. */
  async sessionCreate(opts: SessionCreateOptions = {}): Promise<string> {
    const body: Record<string, unknown> = {};
    if (opts.name !== undefined) body.Name = opts.name;
    if (opts.node !== undefined) body.Node = opts.node;
    if (opts.checks !== undefined) body.Checks = opts.checks;
    if (opts.nodeChecks !== undefined) body.NodeChecks = opts.nodeChecks;
    if (opts.serviceChecks !== undefined) {
      body.ServiceChecks = opts.serviceChecks.map((c) => ({ ID: c.id, Namespace: c.namespace }));
    }
    if (opts.ttlMs !== undefined) body.TTL = `${Math.round(opts.ttlMs)}ms`;
    if (opts.lockDelayMs !== undefined) body.LockDelay = `${Math.round(opts.lockDelayMs)}ms`;
    if (opts.behavior !== undefined) body.Behavior = opts.behavior;
    const created = await this.#json<{ ID: string }>("PUT", "/v1/session/create", {
      ...opts,
      body,
    });
    return created.ID;
  }

  /** PUT /v1/session/renew/:id — undefined when the session is gone (invalidated or expired). */
  async sessionRenew(id: string, opts?: CallOptions): Promise<SessionInfo | undefined> {
    const reply = await this.#request("PUT", `/v1/session/renew/${encodeURIComponent(id)}`, {
      ...opts,
      allow: [404],
    });
    if (reply.status === 404) return undefined;
    const list = parse<Record<string, unknown>[] | null>(reply, "PUT", "session renew");
    return list?.[0] ? sessionInfo(list[0]) : undefined;
  }

  /** PUT /v1/session/destroy/:id — releases (or deletes, per behavior) its locks. */
  async sessionDestroy(id: string, opts?: CallOptions): Promise<void> {
    await this.#request("PUT", `/v1/session/destroy/${encodeURIComponent(id)}`, opts);
  }

  /** GET /v1/session/info/:id — undefined when there is no such session. */
  async sessionInfo(id: string, opts?: CallOptions): Promise<SessionInfo | undefined> {
    const list = await this.#json<Record<string, unknown>[] | null>(
      "GET",
      `/v1/session/info/${encodeURIComponent(id)}`,
      opts,
    );
    return list?.[0] ? sessionInfo(list[0]) : undefined;
  }

  // ---- services and checks -----------------------------------------------------------------

  /** GET /v1/agent/service/:id — undefined when the local agent has no such service. */
  async agentService(id: string, opts?: CallOptions): Promise<AgentService | undefined> {
    const reply = await this.#request("GET", `/v1/agent/service/${encodeURIComponent(id)}`, {
      ...opts,
      allow: [404],
    });
    if (reply.status === 404) return undefined;
    return parse<AgentService>(reply, "GET", `service ${id}`);
  }

  /** GET /v1/agent/services — the local agent's services by ID. */
  async agentServices(opts?: CallOptions): Promise<Record<string, AgentService>> {
    return (await this.#json<Record<string, AgentService> | null>(
      "GET",
      "/v1/agent/services",
      opts,
    )) ?? {};
  }

  /** GET /v1/agent/checks — the local agent's checks by ID. */
  async agentChecks(opts?: CallOptions): Promise<Record<string, Check>> {
    const raw = await this.#json<Record<string, Record<string, unknown>> | null>(
      "GET",
      "/v1/agent/checks",
      opts,
    );
    return Object.fromEntries(Object.entries(raw ?? {}).map(([id, c]) => [id, check(c)]));
  }

  /** PUT /v1/agent/service/register — registers or replaces a service on the local agent. */
  async serviceRegister(
    def: ServiceRegistration,
    opts: ServiceRegisterOptions = {},
  ): Promise<void> {
    await this.#request("PUT", "/v1/agent/service/register", {
      ...opts,
      body: def,
      query: { "replace-existing-checks": opts.replaceExistingChecks ? 1 : undefined },
    });
  }

  /** PUT /v1/agent/service/deregister/:id */
  async serviceDeregister(id: string, opts?: CallOptions): Promise<void> {
    await this.#request("PUT", `/v1/agent/service/deregister/${encodeURIComponent(id)}`, opts);
  }

  /**
   * PUT /v1/agent/check/register — a check on the local agent; its ID field is `ID` (not
   * `CheckID`, which consul 1.8 refuses here), `ServiceID` ties it to a service.
   */
  async checkRegister(
    def: Omit<ServiceCheckDefinition, "CheckID"> & { ID: string; ServiceID?: string },
    opts?: CallOptions,
  ): Promise<void> {
    await this.#request("PUT", "/v1/agent/check/register", { ...opts, body: def });
  }

  /** PUT /v1/agent/check/deregister/:id */
  async checkDeregister(checkId: string, opts?: CallOptions): Promise<void> {
    await this.#request("PUT", `/v1/agent/check/deregister/${encodeURIComponent(checkId)}`, opts);
  }

  /** PUT /v1/agent/check/update/:id — sets a TTL check's status. */
  async checkUpdate(
    checkId: string,
    status: Exclude<CheckStatus, "maintenance">,
    output = "",
    opts?: CallOptions,
  ): Promise<void> {
    await this.#request("PUT", `/v1/agent/check/update/${encodeURIComponent(checkId)}`, {
      ...opts,
      body: { Status: status, Output: output },
    });
  }

  /**
   * PUT /v1/catalog/register of one check's status for another node (`SkipNodeUpdate`): the
   * owning agent writes its own view back at its next sync. Used to mark a dead node's stale
   * check critical until its agent returns.
   */
  async catalogCheckStatus(
    check: { node: string; checkId: string; name: string; serviceId: string },
    status: "critical",
    output: string,
    opts?: CallOptions,
  ): Promise<void> {
    await this.#request("PUT", "/v1/catalog/register", {
      ...opts,
      body: {
        Node: check.node,
        SkipNodeUpdate: true,
        Check: {
          Node: check.node,
          CheckID: check.checkId,
          Name: check.name,
          ServiceID: check.serviceId,
          Status: status,
          Output: output,
        },
      },
    });
  }

  /** GET /v1/health/service/:name — a blocking query when `index` is given. */
  async healthService(
    name: string,
    opts: HealthServiceOptions = {},
  ): Promise<{ entries: ServiceEntry[]; index: number }> {
    const req = blocking(opts);
    req.query = { ...req.query, passing: opts.passing ? 1 : undefined, tag: opts.tag };
    const reply = await this.#request("GET", `/v1/health/service/${encodeURIComponent(name)}`, req);
    const list = parse<Record<string, unknown>[] | null>(reply, "GET", `service ${name}`) ?? [];
    return { entries: list.map(serviceEntry), index: indexOf(reply) };
  }

  // ---- prepared queries --------------------------------------------------------------------

  /** GET /v1/query */
  async queryList(opts?: CallOptions): Promise<PreparedQuery[]> {
    return (await this.#json<PreparedQuery[] | null>("GET", "/v1/query", opts)) ?? [];
  }

  /** GET /v1/query/:id — undefined when there is no such query. */
  async queryGet(id: string, opts?: CallOptions): Promise<PreparedQuery | undefined> {
    const reply = await this.#request("GET", `/v1/query/${encodeURIComponent(id)}`, {
      ...opts,
      allow: [404],
    });
    if (reply.status === 404) return undefined;
    return parse<PreparedQuery[] | null>(reply, "GET", `query ${id}`)?.[0];
  }

  /** POST /v1/query — the new query's ID. */
  async queryCreate(def: PreparedQueryDefinition, opts?: CallOptions): Promise<string> {
    const created = await this.#json<{ ID: string }>("POST", "/v1/query", { ...opts, body: def });
    return created.ID;
  }

  /** PUT /v1/query/:id — replaces the whole definition, keeping the ID. */
  async queryUpdate(id: string, def: PreparedQueryDefinition, opts?: CallOptions): Promise<void> {
    await this.#request("PUT", `/v1/query/${encodeURIComponent(id)}`, { ...opts, body: def });
  }

  /** GET /v1/query/:idOrName/execute — a ConsulError with status 404 for an unknown query. */
  async queryExecute(
    idOrName: string,
    opts: CallOptions & { limit?: number } = {},
  ): Promise<PreparedQueryResult> {
    const raw = await this.#json<Record<string, unknown>>(
      "GET",
      `/v1/query/${encodeURIComponent(idOrName)}/execute`,
      { ...opts, query: { limit: opts.limit } },
    );
    return {
      service: str(raw.Service),
      datacenter: str(raw.Datacenter),
      failovers: num(raw.Failovers),
      nodes: ((raw.Nodes ?? []) as Record<string, unknown>[]).map(serviceEntry),
    };
  }

  /** DELETE /v1/query/:id */
  async queryDelete(id: string, opts?: CallOptions): Promise<void> {
    await this.#request("DELETE", `/v1/query/${encodeURIComponent(id)}`, opts);
  }

  // ---- transport ---------------------------------------------------------------------------

  async #json<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    return parse<T>(await this.#request(method, path, opts), method, path);
  }

  /**
   * One HTTP exchange. Resolves with any 2xx reply or an `allow`ed status; throws
   * ConsulUnreachableError when consul does not answer in time, ConsulError otherwise.
   */
  async #request(method: string, path: string, opts: RequestOptions = {}): Promise<Reply> {
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
        `consul at ${this.address} is unreachable (${what}): ${this.#redact(errText(err))}`,
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

// ---- decoding helpers (pure) ---------------------------------------------------------------

function blocking(opts: BlockingOptions): RequestOptions {
  if (opts.index === undefined && opts.waitMs === undefined) return { ...opts };
  const waitMs = opts.waitMs ?? 5 * 60_000;
  return {
    ...opts,
    query: { index: opts.index, wait: `${Math.max(1, Math.round(waitMs))}ms` },
    // consul adds up to wait/16 of jitter to a blocking query
    extraMs: waitMs + waitMs / 16,
  };
}

function keyPath(key: string): string {
  return key.split("/").map(encodeURIComponent).join("/");
}

function indexOf(reply: Reply): number {
  const n = Number(reply.headers.get("X-Consul-Index") ?? "0");
  return Number.isFinite(n) ? n : 0;
}

function parse<T>(reply: Reply, method: string, what: string): T {
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

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > MAX_BODY_IN_MESSAGE ? `${flat.slice(0, MAX_BODY_IN_MESSAGE)}…` : flat;
}
