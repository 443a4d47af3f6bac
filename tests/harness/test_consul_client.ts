/**
 * The consul client of the tests: the product's (`src/consul/client.ts`, which carries what
 * auto-consul uses) plus endpoints only the tests call, through the same transport.
 */
import { ConsulClient } from "../../src/consul/client.ts";
import { keyPath, parse } from "../../src/consul/transport.ts";
import type {
  AgentService,
  AutopilotConfiguration,
  CallOptions,
  KvEntry,
  PreparedQuery,
  PreparedQueryResult,
} from "../../src/consul/types.ts";
import { kvEntry, num, serviceEntry, str } from "../../src/consul/decode.ts";

export class TestConsulClient extends ConsulClient {
  /** The test client over `client`'s transport (its address, token, TLS settings). */
  static of(client: ConsulClient): TestConsulClient {
    return new TestConsulClient(client.http);
  }

  /** GET /v1/agent/services — the local agent's services by ID. */
  async agentServices(opts?: CallOptions): Promise<Record<string, AgentService>> {
    return (await this.http.json<Record<string, AgentService> | null>(
      "GET",
      "/v1/agent/services",
      opts,
    )) ?? {};
  }

  /**
   * A node known only to the catalog (no agent, so no serfHealth) and a session of it: another
   * instance holding a lock, in the elect tests. Throws when consul refuses either.
   */
  async externalSession(node: string, address: string, name: string): Promise<string> {
    await this.http.request("PUT", "/v1/catalog/register", {
      body: { Node: node, Address: address },
    });
    return await this.sessionCreate({ name, node, checks: [], ttlMs: 60_000 });
  }

  /** GET /v1/operator/autopilot/configuration */
  autopilotConfiguration(opts?: CallOptions): Promise<AutopilotConfiguration> {
    return this.http.json("GET", "/v1/operator/autopilot/configuration", opts);
  }

  /** PUT /v1/agent/force-leave/:node — moves a failed node to "left". */
  async forceLeave(node: string, opts: CallOptions & { prune?: boolean } = {}): Promise<void> {
    await this.http.request("PUT", `/v1/agent/force-leave/${encodeURIComponent(node)}`, {
      ...opts,
      query: { prune: opts.prune ? 1 : undefined },
    });
  }

  /** DELETE /v1/kv/:key (the whole prefix with `recurse`) — false when a cas condition failed. */
  async kvDelete(
    key: string,
    opts: CallOptions & { recurse?: boolean; cas?: number } = {},
  ): Promise<boolean> {
    return await this.http.json<boolean>("DELETE", `/v1/kv/${keyPath(key)}`, {
      ...opts,
      query: { recurse: opts.recurse ? 1 : undefined, cas: opts.cas },
    }) !== false;
  }

  /** GET /v1/kv/:prefix?recurse — every entry under the prefix ([] when none). */
  async kvList(prefix: string, opts?: CallOptions): Promise<KvEntry[]> {
    const reply = await this.http.request("GET", `/v1/kv/${keyPath(prefix)}`, {
      ...opts,
      query: { recurse: 1 },
      allow: [404],
    });
    if (reply.status === 404) return [];
    return parse<Record<string, unknown>[]>(reply, "GET", prefix).map(kvEntry);
  }

  /** GET /v1/status/peers — the raft peers' "ip:8300". */
  async peers(opts?: CallOptions): Promise<string[]> {
    return (await this.http.json<string[] | null>("GET", "/v1/status/peers", opts)) ?? [];
  }

  /** DELETE /v1/query/:id */
  async queryDelete(id: string, opts?: CallOptions): Promise<void> {
    await this.http.request("DELETE", `/v1/query/${encodeURIComponent(id)}`, opts);
  }

  /** GET /v1/query/:idOrName/execute — a ConsulError with status 404 for an unknown query. */
  async queryExecute(
    idOrName: string,
    opts: CallOptions & { limit?: number } = {},
  ): Promise<PreparedQueryResult> {
    const raw = await this.http.json<Record<string, unknown>>(
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

  /** GET /v1/query/:id — undefined when there is no such query. */
  async queryGet(id: string, opts?: CallOptions): Promise<PreparedQuery | undefined> {
    const reply = await this.http.request("GET", `/v1/query/${encodeURIComponent(id)}`, {
      ...opts,
      allow: [404],
    });
    if (reply.status === 404) return undefined;
    return parse<PreparedQuery[] | null>(reply, "GET", `query ${id}`)?.[0];
  }

  /** PUT /v1/agent/service/deregister/:id */
  async serviceDeregister(id: string, opts?: CallOptions): Promise<void> {
    await this.http.request("PUT", `/v1/agent/service/deregister/${encodeURIComponent(id)}`, opts);
  }

  /** PUT /v1/operator/autopilot/configuration — with `cas`, only if ModifyIndex matches. */
  async setAutopilotConfiguration(
    config: AutopilotConfiguration,
    opts: CallOptions & { cas?: number } = {},
  ): Promise<boolean> {
    return await this.http.json<boolean>("PUT", "/v1/operator/autopilot/configuration", {
      ...opts,
      body: config,
      query: { cas: opts.cas },
    }) !== false;
  }
}
