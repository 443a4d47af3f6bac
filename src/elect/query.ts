/**
 * The prepared query that answers with the master: `[master-tag] + query tags`, OnlyPassing.
 * Created when missing, updated in place (same ID) when its service or tags differ; every
 * other field of an existing query (DNS TTL, failover, near, ...) is kept.
 */
import type { ConsulClient } from "../consul/client.ts";
import type { CallOptions, PreparedQuery, PreparedQueryDefinition } from "../consul/types.ts";
import { ConsulError } from "../errors.ts";

export interface QuerySpec {
  name: string;
  /** The service's name (not its ID). */
  service: string;
  tags: string[];
  /** Only passing instances (default); false with --allow-warning: all but critical ones. */
  onlyPassing?: boolean;
}

export type QueryPlan =
  | { action: "create"; def: PreparedQueryDefinition }
  | { action: "update"; id: string; def: PreparedQueryDefinition }
  | { action: "none"; id: string };

/** The query's tags: the master tag first, then the query tags, without repeats. */
export function queryTags(masterTag: string, extra: readonly string[]): string[] {
  return [...new Set([masterTag, ...extra])];
}

/** The DNS name consul answers the query under. */
export function queryDnsName(name: string): string {
  return `${name}.query.consul`;
}

/** Pure: what to do given the stored query of that name (if any). */
export function planQuery(existing: PreparedQuery | undefined, spec: QuerySpec): QueryPlan {
  const onlyPassing = spec.onlyPassing ?? true;
  if (!existing) {
    return {
      action: "create",
      def: {
        Name: spec.name,
        Service: { Service: spec.service, Tags: spec.tags, OnlyPassing: onlyPassing },
      },
    };
  }
  const svc = existing.Service ?? { Service: "" };
  const sorted = (t: readonly string[] | null | undefined) => [...(t ?? [])].sort().join("\n");
  if (
    svc.Service === spec.service && sorted(svc.Tags) === sorted(spec.tags) &&
    (svc.OnlyPassing === true) === onlyPassing
  ) {
    return { action: "none", id: existing.ID };
  }
  const { ID: _id, CreateIndex: _c, ModifyIndex: _m, ...rest } = existing;
  return {
    action: "update",
    id: existing.ID,
    def: {
      ...rest,
      Name: spec.name,
      Service: { ...svc, Service: spec.service, Tags: spec.tags, OnlyPassing: onlyPassing },
    },
  };
}

export interface QueryOutcome {
  id: string;
  action: QueryPlan["action"];
}

/** Creates or updates the query as planned. Two instances creating it at once is handled. */
export async function ensureQuery(
  consul: ConsulClient,
  spec: QuerySpec,
  call: CallOptions,
): Promise<QueryOutcome> {
  for (let attempt = 0;; attempt++) {
    const existing = (await consul.queryList(call)).find((q) => q.Name === spec.name);
    const plan = planQuery(existing, spec);
    switch (plan.action) {
      case "none":
        return { id: plan.id, action: "none" };
      case "update":
        await consul.queryUpdate(plan.id, plan.def, call);
        return { id: plan.id, action: "update" };
      case "create":
        try {
          return { id: await consul.queryCreate(plan.def, call), action: "create" };
        } catch (err) {
          // another instance created it between our list and our create: read it again
          const raced = err instanceof ConsulError &&
            /aliases an existing query name/.test(err.body);
          if (!raced || attempt >= 1) throw err;
        }
    }
  }
}
