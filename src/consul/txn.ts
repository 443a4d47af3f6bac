/**
 * Consul transactions (PUT /v1/txn) the product uses: moving key locks between two sessions of
 * one holder (elect's session replacement, src/elect/session.ts).
 */
import type { ConsulClient } from "./client.ts";
import type { CallOptions } from "./types.ts";
import type { Logger } from "../log.ts";

export interface LockMove {
  key: string;
  /** The key's value (written again by both verbs). */
  value: string;
  from: string;
  to: string;
}

/**
 * Moves each key's lock from one session to another in one transaction: an explicit unlock
 * (no lock-delay) then a lock, so nobody can take a key in between. False when consul rolled it
 * back (a key no longer held by `from`).
 */
export async function kvHandOver(
  consul: Pick<ConsulClient, "http">,
  moves: readonly LockMove[],
  opts?: CallOptions,
): Promise<boolean> {
  const b64 = (v: string) => btoa(String.fromCharCode(...new TextEncoder().encode(v)));
  const body = moves.flatMap((m) => [
    { KV: { Verb: "unlock", Key: m.key, Value: b64(m.value), Session: m.from } },
    { KV: { Verb: "lock", Key: m.key, Value: b64(m.value), Session: m.to } },
  ]);
  const reply = await consul.http.request("PUT", "/v1/txn", { ...opts, body, allow: [409] });
  return reply.status >= 200 && reply.status < 300;
}

/** Moves the keys among `keys` that session `from` holds to session `to` (one transaction). */
export async function handOverHeld(
  consul: Pick<ConsulClient, "http" | "kvGet">,
  keys: readonly string[],
  from: string,
  to: string,
  call: CallOptions,
  log: Logger,
): Promise<void> {
  const moves: LockMove[] = [];
  for (const key of keys) {
    const cur = await consul.kvGet(key, call);
    if (cur.session === from) moves.push({ key, value: cur.value ?? "", from, to });
  }
  if (moves.length === 0) return;
  if (await kvHandOver(consul, moves, call)) {
    log.info("handed over to the new session", { keys: moves.map((m) => m.key).join(",") });
  } else log.warn(`could not hand over ${moves.map((m) => m.key).join(", ")} (changed meanwhile)`);
}
