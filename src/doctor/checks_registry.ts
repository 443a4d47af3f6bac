/**
 * Registry and identity checks: places against serf, live servers without a place, node
 * names claimed twice (serf name conflicts, the catalog's "reserved by node" loop). Pure.
 */
import { freshestPerNode } from "../registry/heartbeats.ts";
import { type AgentFacts, type Finding, readmeRef, type RegistryFacts } from "./facts.ts";

/** Places whose holder serf calls failed or left. */
export function checkPlaceHolders(r: RegistryFacts, a: AgentFacts | undefined): Finding[] {
  if (!a) return [];
  const byName = new Map(a.members.map((m) => [m.name, m]));
  const lastSeen = new Map<string, number>();
  for (const h of r.servers) {
    lastSeen.set(h.node, Math.min(h.ageSeconds, lastSeen.get(h.node) ?? Infinity));
  }
  const out: Finding[] = [];
  for (const c of [...r.claims].sort((x, y) => x.place - y.place)) {
    if (c.node === undefined) continue;
    const m = byName.get(c.node);
    if (!m || (m.status !== "failed" && m.status !== "left")) continue;
    const age = lastSeen.get(c.node);
    out.push({
      id: "place-holder-dead",
      severity: "warning",
      title: `server place ${c.place} is held by ${c.node}, which serf calls ${m.status}`,
      evidence: [
        `slots/${c.place} epoch ${c.epoch}: ${c.node}`,
        `serf: ${m.name} ${m.addr} ${m.status}`,
        `its last server heartbeat: ${age === undefined ? "none" : `${Math.round(age)} s ago`}`,
      ],
      next: `start ${c.node} again; if it is gone for good, a new node takes the place once its ` +
        `heartbeat is stale (twice -e); ${readmeRef("place-holder-dead")}`,
    });
  }
  return out;
}

/** Live server heartbeats of nodes that hold no place (a gem server, or a hand-started one). */
export function checkPlacelessServers(r: RegistryFacts, expirySeconds: number): Finding[] {
  const holders = new Set(r.claims.map((c) => c.node).filter((n) => n !== undefined));
  const live = freshestPerNode(r.servers, expirySeconds).filter((h) => !holders.has(h.node));
  return live.map((h) => ({
    id: "server-without-place",
    severity: "warning",
    title: `${h.node} heartbeats as a server but holds no server place`,
    evidence: [
      `${h.key} (${Math.round(h.ageSeconds)} s old), address ${r.addresses.get(h.node) ?? "?"}`,
      `places: ${r.claims.map((c) => `${c.place}=${c.node ?? "?"}`).join(", ") || "none"}`,
    ],
    next: `a gem server or one started by hand: it counts toward -s; to make it a client run ` +
      `\`auto-consul set_agent\` on it and restart; ${readmeRef("server-without-place")}`,
  }));
}

/** Two agents with one node name: serf keeps one, the other never joins. */
export function checkNameConflicts(
  r: RegistryFacts | undefined,
  a: AgentFacts,
  expirySeconds: number,
): Finding[] {
  const out: Finding[] = [];
  const mine = a.members.find((m) => m.name === a.self.node);
  if (mine && mine.tags.id && a.self.nodeId && mine.tags.id !== a.self.nodeId) {
    out.push({
      id: "name-conflict",
      severity: "critical",
      title: `another agent holds this node's name ${a.self.node} in serf`,
      evidence: [
        `this agent: node ${a.self.node}, id ${a.self.nodeId}`,
        `serf member ${mine.name}: id ${mine.tags.id} at ${mine.addr} (${mine.status})`,
      ],
      next: `give each machine its own name (-n NAME); ${readmeRef("name-conflict")}`,
    });
  }
  // The catalog holds this node's name for another node ID at another address: another
  // machine registered the name first (consul then logs "Node name … is reserved by node …").
  const cat = a.catalog?.find((n) => n.node === a.self.node);
  if (
    cat && cat.id && a.self.nodeId && cat.id !== a.self.nodeId && mine && cat.address !== mine.addr
  ) {
    out.push({
      id: "name-conflict",
      severity: "critical",
      title: `the name ${a.self.node} belongs to another machine (${cat.address}): this agent ` +
        `cannot register`,
      evidence: [
        `this agent: node ${a.self.node}, id ${a.self.nodeId}, at ${mine.addr}`,
        `catalog: ${cat.node} id ${cat.id} at ${cat.address}`,
      ],
      next: `give each machine its own name (-n NAME) and restart this one; ${
        readmeRef("name-conflict")
      }`,
    });
  }
  if (r) {
    for (const h of freshestPerNode([...r.servers, ...r.agents], expirySeconds)) {
      const addr = r.addresses.get(h.node);
      const m = a.members.find((x) => x.name === h.node && x.status === "alive");
      if (!addr || !m || m.addr === addr) continue;
      out.push({
        id: "name-conflict",
        severity: "warning",
        title: `node ${h.node} heartbeats from ${addr}, but serf has ${h.node} alive at ${m.addr}`,
        evidence: [
          `registry ${h.key}: ${addr}`,
          `serf: ${m.name} ${m.addr} id ${m.tags.id ?? "?"}`,
        ],
        next: `two machines use the name ${h.node}, or it moved and serf has not seen it yet: ` +
          `give each machine its own name (-n NAME); ${readmeRef("name-conflict")}`,
      });
    }
  }
  return out;
}

/** A catalog entry whose node ID is not the ID serf has for that name: registration loops. */
export function checkCatalogReserved(a: AgentFacts): Finding[] {
  if (!a.catalog) return [];
  const out: Finding[] = [];
  for (const m of a.members) {
    if (!m.tags.id || m.status !== "alive") continue;
    const c = a.catalog.find((n) => n.node === m.name);
    if (!c || !c.id || c.id === m.tags.id) continue;
    out.push({
      id: "catalog-reserved",
      severity: "critical",
      title:
        `the catalog holds ${m.name} under another node ID: its registration fails in a loop ` +
        `("Node name ${m.name} is reserved by node ${c.id}")`,
      evidence: [
        `catalog: ${c.node} id ${c.id} at ${c.address}`,
        `serf: ${m.name} id ${m.tags.id} at ${m.addr}`,
      ],
      next: `remove the old entry: curl -X PUT -d '{"Node":"${m.name}"}' ` +
        `http://<agent>:8500/v1/catalog/deregister (or \`consul force-leave -prune ${m.name}\` ` +
        `when the old node is failed); ${readmeRef("catalog-reserved")}`,
    });
  }
  return out;
}
