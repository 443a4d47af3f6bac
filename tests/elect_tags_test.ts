/** Pure: role tags and the re-registration payload of `elect` (src/elect/tags.ts). */
import assert from "node:assert/strict";
import type { AgentService } from "../src/consul/types.ts";
import { reregistration, type Role, roleOfTags, roleTags } from "../src/elect/tags.ts";

const names = { masterTag: "master", slaveTag: "slave" };

Deno.test("roleTags: table", () => {
  const table: [string[], Role, string[]][] = [
    [[], "master", ["master"]],
    [[], "slave", ["slave"]],
    [["v1", "sensu"], "master", ["v1", "sensu", "master"]],
    [["slave"], "master", ["master"]],
    [["master"], "master", ["master"]],
    [["a", "slave", "b"], "master", ["a", "master", "b"]],
    [["a", "master", "b"], "slave", ["a", "slave", "b"]],
    [["master", "x", "slave"], "slave", ["slave", "x"]],
    [["slave", "slave"], "slave", ["slave"]],
    [["x", "x"], "slave", ["x", "x", "slave"]],
    [["Master", "SLAVE"], "master", ["Master", "SLAVE", "master"]],
  ];
  for (const [tags, role, want] of table) {
    assert.deepEqual(roleTags(tags, role, names), want, `${JSON.stringify(tags)} -> ${role}`);
  }
});

Deno.test("roleTags: custom tag names leave the defaults alone", () => {
  const custom = { masterTag: "primary", slaveTag: "replica" };
  assert.deepEqual(roleTags(["master", "replica"], "master", custom), ["master", "primary"]);
  assert.deepEqual(roleTags(["primary"], "slave", custom), ["replica"]);
});

Deno.test("roleOfTags: table", () => {
  const table: [string[], Role | undefined][] = [
    [[], undefined],
    [["master"], "master"],
    [["x", "slave"], "slave"],
    [["master", "slave"], undefined],
  ];
  for (const [tags, want] of table) assert.equal(roleOfTags(tags, names), want);
});

const service: AgentService = {
  ID: "redis1",
  Service: "redis",
  Tags: ["v1", "slave", "sensu"],
  Meta: { a: "b", version: "7" },
  Port: 6379,
  Address: "10.0.0.5",
  TaggedAddresses: { lan_ipv4: { Address: "10.0.0.5", Port: 6379 } },
  Weights: { Passing: 5, Warning: 2 },
  EnableTagOverride: true,
  ContentHash: "7e7ed4ac09316837",
};

Deno.test("reregistration: swaps the role tag and keeps every other field", () => {
  const reg = reregistration(service, "master", names);
  assert.ok(reg);
  assert.deepEqual(reg, {
    ID: "redis1",
    Name: "redis",
    Tags: ["v1", "master", "sensu"],
    Meta: { a: "b", version: "7" },
    Port: 6379,
    Address: "10.0.0.5",
    TaggedAddresses: { lan_ipv4: { Address: "10.0.0.5", Port: 6379 } },
    Weights: { Passing: 5, Warning: 2 },
    EnableTagOverride: true,
  });
  assert.equal("Check" in reg, false, "no Check: consul keeps the registered checks");
  assert.equal("Checks" in reg, false);
  assert.equal("ContentHash" in reg, false);
  assert.equal("Service" in reg, false);
});

Deno.test("reregistration: nothing to write when the tags are already right", () => {
  assert.equal(reregistration(service, "slave", names), undefined);
  assert.equal(reregistration({ ...service, Tags: ["master"] }, "master", names), undefined);
});

Deno.test("reregistration: a service without tags gets the role tag", () => {
  const reg = reregistration({ ID: "x", Service: "x", Tags: null }, "slave", names);
  assert.deepEqual(reg, { ID: "x", Name: "x", Tags: ["slave"] });
});

Deno.test("reregistration: does not mutate the service it was given", () => {
  const copy = structuredClone(service);
  reregistration(service, "master", names);
  assert.deepEqual(service, copy);
});
