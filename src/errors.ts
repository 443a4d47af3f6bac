/**
 * The few error classes of auto-consul. `main.ts` is the only place that turns them into
 * exit codes and prints them (one line each).
 */

/** Bad flags, environment or arguments. Exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
  readonly exitCode = 2;
}

/** The registry (S3 bucket or folder) failed. Exit code 3. */
export class RegistryError extends Error {
  override name = "RegistryError";
  readonly exitCode = 3;
  /** A short machine-readable reason: "no-such-bucket", "access-denied", "unreachable", ... */
  readonly reason: string;
  constructor(message: string, reason: string, options?: ErrorOptions) {
    super(message, options);
    this.reason = reason;
  }
}

/** Consul answered with an HTTP error. Carries status and body. Exit code 4 unless a command maps it. */
export class ConsulError extends Error {
  override name = "ConsulError";
  readonly exitCode: number = 4;
  readonly status: number;
  readonly body: string;
  constructor(message: string, status: number, body: string, options?: ErrorOptions) {
    super(message, options);
    this.status = status;
    this.body = body;
  }
}

/** The consul agent's HTTP API did not answer at all (not running, refused, timed out). */
export class ConsulUnreachableError extends ConsulError {
  override name = "ConsulUnreachableError";
  constructor(message: string, options?: ErrorOptions) {
    super(message, 0, "", options);
  }
}

/** Exit codes, in one place. */
export const EXIT = {
  ok: 0,
  /** heartbeat: consul is not running (the gem's behaviour); elect --role-exit-codes: slave */
  consulDown: 1,
  usage: 2,
  registry: 3,
  consul: 4,
  internal: 70,
} as const;

/** The exit code an error maps to. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof UsageError || err instanceof RegistryError || err instanceof ConsulError) {
    return err.exitCode;
  }
  return EXIT.internal;
}

/** One line describing any thrown value. */
export function describe(err: unknown): string {
  if (err instanceof Error) return err.message.split("\n")[0];
  return String(err);
}
