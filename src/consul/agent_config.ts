/**
 * Writes the generated agent config file (see `agentConfigFile`): mode 0600 from the start,
 * through a temporary file renamed into place, so a reader never sees a partial file and the
 * secrets in it are never readable by others, not even for a moment.
 */
import { writeAtomic } from "../util/atomic.ts";
import { type AgentConfigFile, leaveSettingsIn } from "./agent_args.ts";

export async function writeAgentConfig(file: AgentConfigFile): Promise<void> {
  await writeAtomic(file.path, JSON.stringify(file.json, null, 2) + "\n", {
    mode: 0o600,
    exactMode: true,
    dirMode: 0o700,
  });
}

/**
 * Names each `-c` config file that would make a server leave on a signal (overridden by
 * SERVER_LEAVE_OVERRIDE): one warning per file, saying what and why. Unreadable entries are
 * skipped; consul itself reports broken files.
 */
export async function warnLeaveOverride(
  configDir: string,
  warn: (msg: string) => void,
): Promise<void> {
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(configDir));
  } catch {
    return;
  }
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (!e.isFile || !/\.(json|hcl)$/.test(e.name)) continue;
    let text: string;
    try {
      text = await Deno.readTextFile(`${configDir}/${e.name}`);
    } catch {
      continue;
    }
    const found = leaveSettingsIn(text.slice(0, 1_000_000));
    if (found.length === 0) continue;
    warn(
      `${configDir}/${e.name} sets ${found.join(" and ")}: overridden for this server ` +
        `(leave_on_terminate = false, skip_leave_on_interrupt = true), because a server that ` +
        `leaves on a signal drops out of raft: a whole-cluster restart then has no quorum and ` +
        `a client takes the leaving server's place`,
    );
  }
}
