/**
 * auto-consul: the entry point. Parses argv and the environment into a typed config, builds
 * the real dependencies, runs the command, and is the only place that turns errors into exit
 * codes. Commands are imported lazily so `--help`, `--version` and commands that never touch
 * S3 start fast.
 */
import { parseConfig } from "./src/cli/config.ts";
import { helpText } from "./src/cli/help.ts";
import { describe, EXIT, exitCodeOf, UsageError } from "./src/errors.ts";
import { Logger } from "./src/log.ts";
import { versionLine } from "./src/version.ts";

export async function main(
  argv: string[],
  env: Record<string, string | undefined>,
): Promise<number> {
  let parsed;
  try {
    parsed = parseConfig({ argv, env, hostname: hostname() });
  } catch (err) {
    console.error(`auto-consul: ${describe(err)}`);
    return exitCodeOf(err);
  }
  if (parsed.kind === "help") {
    if (parsed.missingCommand) {
      console.error(helpText());
      console.error("auto-consul: no command given: see the commands above");
      return EXIT.usage;
    }
    console.log(helpText(parsed.command));
    return 0;
  }
  if (parsed.kind === "version") {
    console.log(versionLine());
    return 0;
  }
  const config = parsed.config;
  const log = new Logger({
    level: config.logLevel,
    format: config.logFormat,
    component: config.command,
    node: config.node,
  });
  for (const w of parsed.warnings) log.warn(w);
  try {
    const { runCommand } = await import("./src/commands/dispatch.ts");
    return await runCommand(config, env, log);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`auto-consul: ${describe(err)}`);
    } else {
      log.error(describe(err));
    }
    return exitCodeOf(err);
  }
}

function hostname(): string {
  try {
    return Deno.hostname();
  } catch {
    return "localhost";
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args, Deno.env.toObject()));
}
