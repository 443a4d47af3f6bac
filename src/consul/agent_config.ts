/**
 * Writes the generated agent config file (see `agentConfigFile`): mode 0600 from the start,
 * through a temporary file renamed into place, so a reader never sees a partial file and the
 * secrets in it are never readable by others, not even for a moment.
 */
import type { AgentConfigFile } from "./agent_args.ts";

export async function writeAgentConfig(file: AgentConfigFile): Promise<void> {
  await Deno.mkdir(file.dir, { recursive: true, mode: 0o700 });
  const tmp = `${file.path}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  try {
    await Deno.writeTextFile(tmp, JSON.stringify(file.json, null, 2) + "\n", {
      mode: 0o600,
      createNew: true,
    });
    await Deno.chmod(tmp, 0o600); // `mode` on create is filtered by the umask; make it exact
    await Deno.rename(tmp, file.path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
}
