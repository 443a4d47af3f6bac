/**
 * Role tags of the elected service. Pure: which tags the service should carry for a role, and
 * the re-registration that puts them there while keeping every other field.
 *
 * Why re-registering keeps the checks: `PUT /v1/agent/service/register` without `Check` or
 * `Checks` (and without `replace-existing-checks`) leaves the service's registered checks as
 * they are, with their status and output; sessions bound to them stay valid. Verified against
 * Consul 1.8.7 (tests/real/elect_test.ts, step "5+6": after 100 re-registrations the TTL check is
 * still there, passing and taking updates, and the same sessions still hold). Not refreshed: the
 * copy of the service's tags inside each check (`ServiceTags` of /v1/agent/checks), which
 * consul only rewrites when the check itself is registered again; nothing in auto-consul or
 * in prepared queries reads it.
 */
import { type AgentService, registrationOf, type ServiceRegistration } from "../consul/types.ts";

export type Role = "master" | "slave";

export interface RoleTagNames {
  masterTag: string;
  slaveTag: string;
}

/**
 * The tags for `role`: the first master or slave tag is replaced in place by the role's tag,
 * any further master/slave tags are dropped, every other tag keeps its place; when neither is
 * present the role's tag is appended (as the tagger did).
 */
export function roleTags(tags: readonly string[], role: Role, names: RoleTagNames): string[] {
  const want = role === "master" ? names.masterTag : names.slaveTag;
  const out: string[] = [];
  let placed = false;
  for (const t of tags) {
    if (t === names.masterTag || t === names.slaveTag) {
      if (!placed) out.push(want);
      placed = true;
      continue;
    }
    out.push(t);
  }
  if (!placed) out.push(want);
  return out;
}

/** The role the tags say, undefined when they say none or both. */
export function roleOfTags(tags: readonly string[], names: RoleTagNames): Role | undefined {
  const m = tags.includes(names.masterTag);
  const s = tags.includes(names.slaveTag);
  if (m === s) return undefined;
  return m ? "master" : "slave";
}

/**
 * The registration that gives `service` the tags of `role`, or undefined when its tags are
 * already right (nothing is written then). Every field of the agent's copy is kept (name, ID,
 * port, address, tagged addresses, meta, weights, EnableTagOverride, proxy/connect settings);
 * `Check`/`Checks` are left out so that consul keeps the registered checks.
 */
export function reregistration(
  service: AgentService,
  role: Role,
  names: RoleTagNames,
): ServiceRegistration | undefined {
  const current = service.Tags ?? [];
  const tags = roleTags(current, role, names);
  if (sameList(current, tags)) return undefined;
  return { ...registrationOf(service), Tags: tags };
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
