/**
 * Role-change hooks: `--on-master CMD` / `--on-slave CMD`, an argv (never a shell), run when
 * this instance's role changes (including its first role after start, or after a clean stop),
 * with the new role and the master in the environment. A failing hook is logged, not fatal.
 * A master change seen by an instance that stays slave is not a role change: no hook.
 */
import type { Logger } from "../log.ts";
import { isInstance, type LockHolder } from "./lock.ts";
import type { Role } from "./tags.ts";

export interface HookPlan {
  role: Role;
  argv: string[];
  env: Record<string, string>;
}

/** The environment a hook gets on top of the process's own. */
export function hookEnv(role: Role, service: string, master: LockHolder | undefined) {
  return {
    AUTO_CONSUL_ROLE: role,
    AUTO_CONSUL_SERVICE: service,
    AUTO_CONSUL_MASTER_NODE: master?.node ?? "",
    AUTO_CONSUL_MASTER_ADDRESS: master?.address ?? "",
    AUTO_CONSUL_MASTER_PORT: master && master.port > 0 ? String(master.port) : "",
  };
}

export interface HookDecision {
  /** The hook to run now, if any. */
  plan?: HookPlan;
  /** The role whose change is now handled (to keep in local state). */
  handled?: Role;
}

/**
 * Pure: the hook for a round. A hook runs once per role change: when `role` differs from the
 * role last handled. Becoming slave is handled only once the master is known — another
 * instance holds the lock —, so the slave hook always gets the new master's address: while the
 * lock is free (the old master's lock-delay) or still names this instance (`me`: its own old
 * session, read before consul ended it) the change waits for a later round. Invariant
 * (docs/elect.md): an on-slave hook never names this instance as master. The change is handled
 * (and not repeated) even when no hook is set for that role.
 */
export function hookFor(
  handled: Role | undefined,
  role: Role,
  hooks: { onMaster?: string[]; onSlave?: string[] },
  me: { node: string; service: string },
  master: LockHolder | undefined,
): HookDecision {
  if (handled === role) return { handled };
  if (role === "slave" && (master === undefined || isInstance(master, me))) return { handled };
  const argv = role === "master" ? hooks.onMaster : hooks.onSlave;
  if (!argv || argv.length === 0) return { handled: role };
  return { plan: { role, argv, env: hookEnv(role, me.service, master) }, handled: role };
}

export interface HookRun {
  /** Exit code; undefined when killed by a signal. */
  code?: number;
  timedOut: boolean;
  /** The last part of stdout and stderr. */
  output: string;
}

/** Runs an argv with extra environment, bounded by `timeoutMs` (then killed). */
export type SpawnHook = (
  argv: string[],
  env: Record<string, string>,
  timeoutMs: number,
) => Promise<HookRun>;

const OUTPUT_TAIL = 2000;

/** The real SpawnHook: Deno.Command, no shell, stdin closed, output kept (tail). */
export const spawnHook: SpawnHook = async (argv, env, timeoutMs) => {
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let output = "";
  const collect = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s.pipeThrough(new TextDecoderStream())) {
      output = (output + chunk).slice(-OUTPUT_TAIL);
    }
  };
  const readers = Promise.allSettled([collect(child.stdout), collect(child.stderr)]);
  let timedOut = false;
  const kill = (sig: Deno.Signal) => {
    try {
      child.kill(sig);
    } catch { /* already exited */ }
  };
  const term = setTimeout(() => {
    timedOut = true;
    kill("SIGTERM");
  }, timeoutMs);
  const hard = setTimeout(() => kill("SIGKILL"), timeoutMs + 1000);
  try {
    const status = await child.status;
    // a grandchild may keep the pipes open: do not wait for it
    let t: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([readers, new Promise((r) => t = setTimeout(r, 500))]);
    clearTimeout(t);
    return { code: status.signal ? undefined : status.code, timedOut, output: output.trim() };
  } finally {
    clearTimeout(term);
    clearTimeout(hard);
  }
};

/** Runs a planned hook; logs its failure (never throws). True when it exited 0. */
export async function runHook(
  plan: HookPlan,
  spawn: SpawnHook,
  timeoutMs: number,
  log: Logger,
): Promise<boolean> {
  const what = `on-${plan.role} hook ${plan.argv[0]}`;
  try {
    const run = await spawn(plan.argv, plan.env, timeoutMs);
    if (run.timedOut) {
      log.error(`${what} did not finish within ${timeoutMs} ms and was stopped`, {
        output: run.output,
      });
      return false;
    }
    if (run.code !== 0) {
      log.error(`${what} failed with exit code ${run.code ?? "(signal)"}`, { output: run.output });
      return false;
    }
    log.info(`${what} ran`, { master: plan.env.AUTO_CONSUL_MASTER_ADDRESS });
    return true;
  } catch (err) {
    log.error(`${what} could not be started: ${(err as Error).message}`);
    return false;
  }
}
