/** Which address and node name this node announces in the registry. Pure. */
import type { AgentSelf } from "../consul/types.ts";
import { parseJoinAddress } from "../registry/layout.ts";
import { nodeNameProblem } from "../util/validate.ts";

/**
 * The join address written as the heartbeat body: the advertise address, else the bind
 * address, else (bind 0.0.0.0) the address consul reports for itself. Never 0.0.0.0.
 */
export function announceAddress(
  flags: { advertise?: string; bind: string },
  self: Pick<AgentSelf, "advertiseAddr" | "memberAddr">,
): string {
  const candidates = [flags.advertise, flags.bind, self.advertiseAddr, self.memberAddr];
  for (const c of candidates) {
    const a = c === undefined ? undefined : parseJoinAddress(c);
    if (a !== undefined) return a;
  }
  throw new Error(
    `no routable address to announce: bind is ${flags.bind} and consul reports ` +
      `"${self.memberAddr}"; give --advertise IP`,
  );
}

/** The node name: the one given explicitly, else consul's own. */
export function announceNode(
  flags: { node: string; nodeExplicit: boolean },
  self: Pick<AgentSelf, "node">,
): string {
  if (flags.nodeExplicit) return flags.node;
  const why = nodeNameProblem(self.node);
  if (why) {
    throw new Error(
      `consul's node name "${self.node}" cannot be used in the registry (${why}): give --node`,
    );
  }
  return self.node;
}
