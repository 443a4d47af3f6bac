/**
 * Preflight of the user's consul config (`-c DIR`) before anything is claimed: `consul
 * validate` on it, beside a minimal file naming the data dir (consul requires one). A config
 * consul rejects (invalid HCL, an unknown key) ends `run` at once with consul's own line,
 * instead of a server place claimed for a consul that never starts. Runs beside `consul
 * version`, so the start is not longer for it.
 */
import { ConsulStartError } from "../errors.ts";

export async function validateConfigDir(
  bin: string,
  configDir: string,
  scratchDir: string,
): Promise<void> {
  await Deno.mkdir(scratchDir, { recursive: true, mode: 0o700 });
  const base = `${scratchDir}/validate-base.json`;
  await Deno.writeTextFile(base, JSON.stringify({ data_dir: scratchDir }) + "\n");
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(bin, {
      args: ["validate", "-quiet", base, configDir],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch {
    return; // the binary itself is checked (and reported) by consulVersion
  } finally {
    await Deno.remove(base).catch(() => {});
  }
  if (out.success) return;
  const dec = new TextDecoder();
  const text = `${dec.decode(out.stderr)}\n${dec.decode(out.stdout)}`;
  const line = text.split("\n").map((l) => l.trim()).find((l) => l !== "") ?? "";
  throw new ConsulStartError(
    `consul rejects the config in -c ${configDir}: ${line.replace(/^==> /, "").slice(0, 300)}`,
  );
}
