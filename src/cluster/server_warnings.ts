/**
 * Warnings for a node about to run as a server outside the places: one whose mode was set by
 * hand (or kept from the gem) holds no server place, and one that joins when `-s` live servers
 * are already there makes more servers than wanted. Pure.
 */
import type { HeldPlace } from "./places.ts";
import type { Mode } from "./state.ts";

export function serverWarnings(input: {
  node: string;
  mode: Mode;
  place?: HeldPlace;
  servers: number;
  /** Nodes with a live server heartbeat, when the registry was read. */
  liveServers?: readonly string[];
}): string[] {
  if (input.mode !== "server") return [];
  const out: string[] = [];
  if (input.place === undefined) {
    out.push(
      `this node runs as a server without a server place (its mode was set by hand or kept): ` +
        `it is not one of the ${input.servers} places of -s ${input.servers}`,
    );
  }
  const others = [...new Set(input.liveServers ?? [])].filter((n) => n !== input.node);
  if (others.length >= input.servers) {
    out.push(
      `${others.length} other servers are live already (want -s ${input.servers}): this node ` +
        `makes ${others.length + 1} servers`,
    );
  }
  return out;
}
