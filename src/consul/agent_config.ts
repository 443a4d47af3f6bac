/**
 * Writes the generated agent config file (see `agentConfigFile`): mode 0600 from the start,
 * through a temporary file renamed into place, so a reader never sees a partial file and the
 * secrets in it are never readable by others, not even for a moment.
 */
import { writeAtomic } from "../util/atomic.ts";
import type { AgentConfigFile } from "./agent_args.ts";

export async function writeAgentConfig(file: AgentConfigFile): Promise<void> {
  await writeAtomic(file.path, JSON.stringify(file.json, null, 2) + "\n", {
    mode: 0o600,
    exactMode: true,
    dirMode: 0o700,
  });
}
