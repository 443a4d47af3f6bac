/**
 * A small client for the consul agent HTTP API (Consul 1.8 semantics): only the endpoints
 * auto-consul uses. Adapters only: every method fetches and returns data, callers decide.
 *
 * Conventions:
 * - Summaries the client builds are camelCase (`AgentSelf`, `SerfMember`, `KvEntry`, ...).
 * - Objects a caller must send back to consul unchanged keep consul's own PascalCase JSON
 *   (`AgentService`, `ServiceRegistration`, `PreparedQuery*`, `AutopilotConfiguration`), and
 *   summaries carry `raw` where a caller may need a field not typed here.
 * - Every call has a timeout (`timeoutMs`, default 10 s; blocking queries add their wait) and
 *   takes an optional caller `signal`. A caller's abort rejects with the signal's reason.
 * - Not answering (refused, reset, timed out) → `ConsulUnreachableError`; an HTTP error →
 *   `ConsulError` with `status` and `body`. "Not found" is `undefined` where the method says so.
 * - The ACL token goes in the `X-Consul-Token` header only, and is redacted from errors.
 */
import {
  blocking,
  type ConsulClientOptions,
  ConsulHttp,
  indexOf,
  keyPath,
  parse,
} from "./transport.ts";
import type {
  AgentSelf,
  AgentService,
  AutopilotHealth,
  BlockingOptions,
  CallOptions,
  CatalogNode,
  Check,
  CheckStatus,
  HealthServiceOptions,
  KvGetResult,
  KvPutOptions,
  PreparedQuery,
  PreparedQueryDefinition,
  RaftConfiguration,
  SerfMember,
  ServiceCheckDefinition,
  ServiceEntry,
  ServiceRegisterOptions,
  ServiceRegistration,
  SessionCreateOptions,
  SessionInfo,
} from "./types.ts";
import {
  agentSelf,
  autopilotHealth,
  check,
  kvEntry,
  raftConfiguration,
  serfMember,
  serviceEntry,
  sessionInfo,
  str,
} from "./decode.ts";

export class ConsulClient {
  /** The HTTP exchange (tests call endpoints the product does not through it). */
  readonly http: ConsulHttp;
  /** "http://host:port", no trailing slash. */
  readonly baseUrl: string;
  /** "host:port", for messages. */
  readonly address: string;
  readonly timeoutMs: number;

  /** A client of its own, or one over an existing transport. */
  constructor(opts: ConsulClientOptions | ConsulHttp) {
    this.http = opts instanceof ConsulHttp ? opts : new ConsulHttp(opts);
    this.baseUrl = this.http.baseUrl;
    this.address = this.http.address;
    this.timeoutMs = this.http.timeoutMs;
  }

  // ---- agent -------------------------------------------------------------------------------

  /** GET /v1/agent/self */
  async self(opts?: CallOptions): Promise<AgentSelf> {
    return agentSelf(
      await this.http.json<Record<string, unknown>>("GET", "/v1/agent/self", opts),
    );
  }

  /** GET /v1/agent/members (LAN, or WAN with `wan`). */
  async members(opts: CallOptions & { wan?: boolean } = {}): Promise<SerfMember[]> {
    const list = await this.http.json<Record<string, unknown>[]>("GET", "/v1/agent/members", {
      ...opts,
      query: { wan: opts.wan ? 1 : undefined },
    });
    return (list ?? []).map(serfMember);
  }

  /** PUT /v1/agent/join/:addr — `addr` is "ip" or "ip:port" (serf LAN port, or WAN with `wan`). */
  async join(addr: string, opts: CallOptions & { wan?: boolean } = {}): Promise<void> {
    await this.http.request("PUT", `/v1/agent/join/${encodeURIComponent(addr)}`, {
      ...opts,
      query: { wan: opts.wan ? 1 : undefined },
    });
  }

  /** PUT /v1/agent/leave — graceful leave; the agent then shuts down. */
  async leave(opts?: CallOptions): Promise<void> {
    await this.http.request("PUT", "/v1/agent/leave", opts);
  }

  // ---- status and raft ---------------------------------------------------------------------

  /** GET /v1/status/leader — the leader's "ip:8300", undefined when there is none. */
  async leader(opts?: CallOptions): Promise<string | undefined> {
    const leader = await this.http.json<string>("GET", "/v1/status/leader", opts);
    return leader ? leader : undefined;
  }

  /**
   * GET /v1/operator/raft/configuration — with `stale`, any server answers from its own copy
   * (no leader needed: without it a leaderless cluster holds the call for consul's RPC hold
   * timeout, about 7 s, then fails).
   */
  async raftConfiguration(
    opts: CallOptions & { stale?: boolean } = {},
  ): Promise<RaftConfiguration> {
    const raw = await this.http.json<Record<string, unknown>>(
      "GET",
      "/v1/operator/raft/configuration",
      { ...opts, query: { stale: opts.stale ? "" : undefined } },
    );
    return raftConfiguration(raw);
  }

  /**
   * DELETE /v1/operator/raft/peer?id= — removes a server from the raft configuration (through
   * the leader; raft protocol 3 names servers by their node-id).
   */
  async raftRemovePeer(id: string, opts?: CallOptions): Promise<void> {
    await this.http.request("DELETE", "/v1/operator/raft/peer", { ...opts, query: { id } });
  }

  /** GET /v1/operator/autopilot/health — needs a leader (a ConsulError otherwise). */
  async autopilotHealth(opts?: CallOptions): Promise<AutopilotHealth> {
    const reply = await this.http.request("GET", "/v1/operator/autopilot/health", {
      ...opts,
      // consul answers 429 when the cluster is unhealthy, with the same body
      allow: [429],
    });
    return autopilotHealth(parse<Record<string, unknown>>(reply, "GET", "autopilot health"));
  }

  /** GET /v1/catalog/nodes — every node in the catalog, with its node ID. */
  async catalogNodes(opts: CallOptions & { stale?: boolean } = {}): Promise<CatalogNode[]> {
    const list = await this.http.json<Record<string, unknown>[] | null>(
      "GET",
      "/v1/catalog/nodes",
      {
        ...opts,
        query: { stale: opts.stale ? "" : undefined },
      },
    );
    return (list ?? []).map((n) => ({ id: str(n.ID), node: str(n.Node), address: str(n.Address) }));
  }

  /** GET /v1/catalog/node/:node — the node's catalog entry, undefined when it has none. */
  async catalogNode(node: string, opts?: CallOptions): Promise<CatalogNode | undefined> {
    const reply = await this.http.request("GET", `/v1/catalog/node/${encodeURIComponent(node)}`, {
      ...opts,
      allow: [404],
    });
    if (reply.status === 404) return undefined;
    const body = parse<{ Node?: Record<string, unknown> } | null>(reply, "GET", node);
    const n = body?.Node;
    return n ? { id: str(n.ID), node: str(n.Node), address: str(n.Address) } : undefined;
  }

  /** PUT /v1/catalog/deregister — removes a node, its services and checks from the catalog. */
  async catalogDeregister(node: string, opts?: CallOptions): Promise<void> {
    await this.http.request("PUT", "/v1/catalog/deregister", { ...opts, body: { Node: node } });
  }

  // ---- KV ----------------------------------------------------------------------------------

  /** GET /v1/kv/:key — a blocking query when `index` is given. */
  async kvGet(key: string, opts: BlockingOptions = {}): Promise<KvGetResult> {
    const reply = await this.http.request("GET", `/v1/kv/${keyPath(key)}`, {
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
    return await this.http.json<boolean>("PUT", `/v1/kv/${keyPath(key)}`, {
      ...opts,
      body: value,
      query: { acquire, release, cas, flags },
    }) === true;
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
    const created = await this.http.json<{ ID: string }>("PUT", "/v1/session/create", {
      ...opts,
      body,
    });
    return created.ID;
  }

  /** PUT /v1/session/renew/:id — undefined when the session is gone (invalidated or expired). */
  async sessionRenew(id: string, opts?: CallOptions): Promise<SessionInfo | undefined> {
    const reply = await this.http.request("PUT", `/v1/session/renew/${encodeURIComponent(id)}`, {
      ...opts,
      allow: [404],
    });
    if (reply.status === 404) return undefined;
    const list = parse<Record<string, unknown>[] | null>(reply, "PUT", "session renew");
    return list?.[0] ? sessionInfo(list[0]) : undefined;
  }

  /** PUT /v1/session/destroy/:id — releases (or deletes, per behavior) its locks. */
  async sessionDestroy(id: string, opts?: CallOptions): Promise<void> {
    await this.http.request("PUT", `/v1/session/destroy/${encodeURIComponent(id)}`, opts);
  }

  /** GET /v1/session/info/:id — undefined when there is no such session. */
  async sessionInfo(id: string, opts?: CallOptions): Promise<SessionInfo | undefined> {
    const list = await this.http.json<Record<string, unknown>[] | null>(
      "GET",
      `/v1/session/info/${encodeURIComponent(id)}`,
      opts,
    );
    return list?.[0] ? sessionInfo(list[0]) : undefined;
  }

  // ---- services and checks -----------------------------------------------------------------

  /** GET /v1/agent/service/:id — undefined when the local agent has no such service. */
  async agentService(id: string, opts?: CallOptions): Promise<AgentService | undefined> {
    const reply = await this.http.request("GET", `/v1/agent/service/${encodeURIComponent(id)}`, {
      ...opts,
      allow: [404],
    });
    if (reply.status === 404) return undefined;
    return parse<AgentService>(reply, "GET", `service ${id}`);
  }

  /** GET /v1/agent/checks — the local agent's checks by ID. */
  async agentChecks(opts?: CallOptions): Promise<Record<string, Check>> {
    const raw = await this.http.json<Record<string, Record<string, unknown>> | null>(
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
    await this.http.request("PUT", "/v1/agent/service/register", {
      ...opts,
      body: def,
      query: { "replace-existing-checks": opts.replaceExistingChecks ? 1 : undefined },
    });
  }

  /**
   * PUT /v1/agent/check/register — a check on the local agent; its ID field is `ID` (not
   * `CheckID`, which consul 1.8 refuses here), `ServiceID` ties it to a service.
   */
  async checkRegister(
    def: Omit<ServiceCheckDefinition, "CheckID"> & { ID: string; ServiceID?: string },
    opts?: CallOptions,
  ): Promise<void> {
    await this.http.request("PUT", "/v1/agent/check/register", { ...opts, body: def });
  }

  /** PUT /v1/agent/check/deregister/:id */
  async checkDeregister(checkId: string, opts?: CallOptions): Promise<void> {
    await this.http.request(
      "PUT",
      `/v1/agent/check/deregister/${encodeURIComponent(checkId)}`,
      opts,
    );
  }

  /** PUT /v1/agent/check/update/:id — sets a TTL check's status. */
  async checkUpdate(
    checkId: string,
    status: Exclude<CheckStatus, "maintenance">,
    output = "",
    opts?: CallOptions,
  ): Promise<void> {
    await this.http.request("PUT", `/v1/agent/check/update/${encodeURIComponent(checkId)}`, {
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
    await this.http.request("PUT", "/v1/catalog/register", {
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
    const reply = await this.http.request(
      "GET",
      `/v1/health/service/${encodeURIComponent(name)}`,
      req,
    );
    const list = parse<Record<string, unknown>[] | null>(reply, "GET", `service ${name}`) ?? [];
    return { entries: list.map(serviceEntry), index: indexOf(reply) };
  }

  // ---- prepared queries --------------------------------------------------------------------

  /** GET /v1/query */
  async queryList(opts?: CallOptions): Promise<PreparedQuery[]> {
    return (await this.http.json<PreparedQuery[] | null>("GET", "/v1/query", opts)) ?? [];
  }

  /** POST /v1/query — the new query's ID. */
  async queryCreate(def: PreparedQueryDefinition, opts?: CallOptions): Promise<string> {
    const created = await this.http.json<{ ID: string }>("POST", "/v1/query", {
      ...opts,
      body: def,
    });
    return created.ID;
  }

  /** PUT /v1/query/:id — replaces the whole definition, keeping the ID. */
  async queryUpdate(id: string, def: PreparedQueryDefinition, opts?: CallOptions): Promise<void> {
    await this.http.request("PUT", `/v1/query/${encodeURIComponent(id)}`, { ...opts, body: def });
  }
}

export type { ConsulClientOptions };
