/**
 * Acceptance (issue 13, place keys that cannot be jammed): adversarial objects under slots/
 * (epochs far ahead, at the largest readable values, non-canonical spellings, garbage bodies)
 * never take a place away from a legitimate node for good. Seeded: the seed is in every
 * failure message, and AUTO_CONSUL_FUZZ_SEED replays one.
 *
 * Per round: junk is planted and aged past the expiry; then N legitimate nodes (each with a
 * live server heartbeat) claim, and all N places end up held by them, one each; then a second
 * wave of junk beyond the reach of the current claims, below them, or no claim at all, is
 * planted and every node still holds its place. (A claim just ahead of the current one is a
 * takeover by whoever can write the store, not a jam: the first wave shows such a place is
 * claimed back once its junk holder is stale.)
 */
import assert from "node:assert/strict";
import { takePlace } from "../../src/cluster/claim.ts";
import { readClaims } from "../../src/cluster/decision_view.ts";
import { MAX_EPOCH_LEAD } from "../../src/cluster/places.ts";
import { parseSlotKey, slotKey } from "../../src/registry/layout.ts";
import { writeHeartbeat } from "../../src/registry/heartbeats.ts";
import { type Backend, quietLog } from "./fixtures.ts";
import { withFixture } from "./contract.ts";

const SERVERS = 3;
/** Short, so junk can be aged past it (S3's LastModified cannot be set: the fixture waits). */
const EXPIRY_S = 6;

/** mulberry32: a small seeded PRNG, enough for test schedules. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = <T>(random: () => number, xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
const digits = (random: () => number, n: number) =>
  String(1 + Math.floor(random() * 9)) +
  Array.from({ length: n - 1 }, () => Math.floor(random() * 10)).join("");

/** One adversarial key under slots/ (canonical or not) and a garbage body. */
function junk(random: () => number): { key: string; body: Uint8Array } {
  const k = Math.floor(random() * SERVERS);
  const place = pick(random, [String(k), String(k), String(k), `0${k}`, `${k} `, "99"]);
  const epoch = pick(random, [
    "0000000001",
    "0000000002",
    String(1 + Math.floor(random() * 20)).padStart(10, "0"),
    "9999999998",
    "9999999999",
    "10000000000",
    "10000000001",
    slotKey(0, MAX_EPOCH_LEAD - 1).slice(8),
    slotKey(0, MAX_EPOCH_LEAD).slice(8),
    slotKey(0, MAX_EPOCH_LEAD + 1).slice(8),
    slotKey(0, MAX_EPOCH_LEAD + 2).slice(8),
    "99999999999999",
    "999999999999999",
    "1000000000000000",
    digits(random, 10),
    digits(random, 11 + Math.floor(random() * 5)),
    "00000000001",
    "0000000000",
    "1",
    "+000000001",
    "1e10",
  ]);
  const body = pick(random, [
    "",
    "ghost-1",
    "ghost-2\n",
    "$(reboot)",
    "x".repeat(300),
    "\u0000\u00ff\u001b[2J",
  ]);
  return { key: `slots/${place}/${epoch}`, body: new TextEncoder().encode(body) };
}

export async function slotsFuzzSuite(
  t: Deno.TestContext,
  backend: Backend,
  rounds: number,
): Promise<void> {
  const base = Number(Deno.env.get("AUTO_CONSUL_FUZZ_SEED") ?? Date.now() % 1_000_000);
  for (let r = 0; r < rounds; r++) {
    const seed = base + r;
    await t.step(`jammed places: seed ${seed}`, () =>
      withFixture(backend, async (fx) => {
        const random = seeded(seed);
        const log = quietLog();
        const why = (s: string) => `${s} (seed ${seed})`;
        const first = Array.from({ length: 4 + Math.floor(random() * 12) }, () => junk(random))
          .filter((j) => fx.canPlant(j.key));
        for (const j of first) await fx.plant(j.key, j.body);
        await fx.makeOlder(first.map((j) => j.key), EXPIRY_S);

        const nodes = Array.from({ length: SERVERS }, (_, i) => `legit-${i}`);
        const held = new Map<string, { place: number; epoch: number }>();
        for (const node of nodes) {
          // Every holder so far announces itself again, so none looks stale to the next one.
          for (const n of [...held.keys(), node]) {
            await writeHeartbeat(fx.registry, {
              node: n,
              address: "10.0.0.1",
              dirs: ["servers", "agents"],
              now: new Date(),
              previous: [],
            }, log);
          }
          const got = await takePlace(fx.registry, {
            node,
            servers: SERVERS,
            expirySeconds: EXPIRY_S,
          }, log);
          assert.equal(got.mode, "server", why(`${node}: ${got.reason}`));
          held.set(node, got.place!);
        }
        assert.deepEqual(
          [...held.values()].map((h) => h.place).sort(),
          [0, 1, 2],
          why("each legitimate node holds one place"),
        );
        const claims = await readClaims(fx.registry, SERVERS, log);
        for (const c of claims) {
          assert.equal(
            held.get(c.node ?? "")?.place,
            c.place,
            why(`place ${c.place} read back as ${JSON.stringify(c)}; planted ${
              first.map((j) => j.key)
            }`),
          );
        }

        // Junk on top of held places: beyond the reach of the current claims (see currentClaims),
        // below them, or not a claim at all.
        const current = new Map(claims.map((c) => [c.place, c.epoch]));
        const second = Array.from({ length: 4 + Math.floor(random() * 12) }, () =>
          junk(random))
          .filter((j) => {
            const p = parseSlotKey(j.key);
            return fx.canPlant(j.key) &&
              (p === undefined || p.place >= SERVERS || p.epoch < current.get(p.place)! ||
                p.epoch > current.get(p.place)! + MAX_EPOCH_LEAD + 100);
          });
        for (const j of second) await fx.plant(j.key, j.body);
        for (const node of nodes) {
          const again = await takePlace(fx.registry, {
            node,
            servers: SERVERS,
            expirySeconds: EXPIRY_S,
            held: held.get(node),
          }, log);
          assert.equal(
            again.mode,
            "server",
            why(
              `${node} after more junk: ${again.reason}; held ${
                JSON.stringify([...held])
              }; planted ${first.map((j) => j.key)} then ${second.map((j) => j.key)}`,
            ),
          );
          assert.deepEqual(again.place, held.get(node), why(`${node} keeps its place`));
        }
      }));
  }
}
