/**
 * Warnings for a node about to run as a server outside the places: one whose mode was set by
 * hand (or kept from the gem) holds no server place, and one that joins when `-s` live servers
 * are already there makes more servers than wanted; and for an even `-s`, which tolerates no
 * more failed servers than the odd number below it. Pure.
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

/**
 * `-s` even (2, 4, ...): quorum is n/2 + 1, so n servers tolerate as many failures as n - 1.
 * Undefined for 1 (a single-server cluster, by choice) and odd counts.
 */
export function serverCountWarning(servers: number): string | undefined {
  if (servers < 2 || servers % 2 !== 0) return undefined;
  const tolerated = Math.floor((servers - 1) / 2);
  return `-s ${servers}: an even number of servers tolerates no more failures than ` +
    `-s ${servers - 1} (quorum ${Math.floor(servers / 2) + 1}, ${tolerated} may fail): ` +
    `consul recommends 3 or 5`;
}

/** The warnings for a mode decision (run, set_mode) or a mode set by hand (set_server). */
export function decisionWarnings(
  opts: { node: string; servers: number },
  decided: {
    mode: Mode;
    /** Set by hand or kept: holds no place whatever the registry says. */
    explicit: boolean;
    place?: HeldPlace;
    /** Live servers, when the registry was read. */
    liveServers?: readonly { node: string }[];
  },
): string[] {
  const count = serverCountWarning(opts.servers);
  return [
    ...(count ? [count] : []),
    ...serverWarnings({
      ...opts,
      mode: decided.mode,
      place: decided.explicit ? undefined : decided.place,
      liveServers: decided.liveServers?.map((m) => m.node),
    }),
  ];
}
