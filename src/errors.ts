/**
 * The few error classes of auto-consul, the exit codes (`EXIT`), how a failure is classed for
 * retrying (`classify`) and the one-line text of any thrown value (`describe`). `main.ts` turns
 * an error that reaches it into its exit code and prints it (one line); `elect` and `doctor`
 * map their own failures to their documented exit codes.
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

/**
 * The local state is unusable: the data dir cannot be created or written, is not a folder, or
 * a file in it (mode, place) holds garbage. Exit code 7.
 */
export class LocalStateError extends Error {
  override name = "LocalStateError";
  readonly exitCode = 7;
}

/**
 * Consul cannot run: it exited at once the same way several times in a row (a bad flag or
 * config, a port taken). Carries consul's own error line. Exit code 4.
 */
export class ConsulStartError extends Error {
  override name = "ConsulStartError";
  readonly exitCode = 4;
  /** Consul had run for a while before in this process (so a place it holds is not new). */
  readonly ranBefore: boolean;
  constructor(message: string, options?: ErrorOptions & { ranBefore?: boolean }) {
    super(message, options);
    this.ranBefore = options?.ranBefore ?? false;
  }
}

/**
 * Exit codes, in one place. README's exit-code table lists each of them (tests/readme_test.ts
 * checks that it does).
 */
export const EXIT = {
  ok: 0,
  /** heartbeat: consul is not running (the gem's behaviour); elect --role-exit-codes: slave */
  consulDown: 1,
  usage: 2,
  registry: 3,
  consul: 4,
  local: 7,
  internal: 70,
} as const;

/** The exit code an error maps to. */
export function exitCodeOf(err: unknown): number {
  if (
    err instanceof UsageError || err instanceof RegistryError || err instanceof ConsulError ||
    err instanceof LocalStateError || err instanceof ConsulStartError
  ) {
    return err.exitCode;
  }
  return EXIT.internal;
}

/**
 * How a failure is handled, decided in one place:
 * - "permanent": retrying cannot help (a bad flag, no such bucket, an unusable registry or
 *   data dir, a store ignoring conditional writes, consul unable to start): end the command
 *   with the error's exit code and its one line;
 * - "denied": access denied or no credentials — permanent too, but only after a short bounded
 *   retry, because IAM and credential changes take a while to propagate;
 * - "transient": the network, a 5xx, throttling, a consul that is not answering yet: retry with
 *   backoff, forever.
 */
export type FailureClass = "permanent" | "denied" | "transient";

const PERMANENT_REGISTRY_REASONS = new Set([
  "no-such-bucket",
  "conditions-ignored",
  "unsafe-path",
  "no-registry",
  "not-a-folder",
  "read-only",
  "too-many-objects",
]);

export function classify(err: unknown): FailureClass {
  if (
    err instanceof UsageError || err instanceof LocalStateError || err instanceof ConsulStartError
  ) {
    return "permanent";
  }
  if (err instanceof RegistryError) {
    if (err.reason === "access-denied" || err.reason === "no-credentials") return "denied";
    return PERMANENT_REGISTRY_REASONS.has(err.reason) ? "permanent" : "transient";
  }
  if (err instanceof ConsulUnreachableError) return "transient";
  if (err instanceof ConsulError) {
    if (err.status === 401 || err.status === 403) return "denied";
    return err.status >= 400 && err.status < 500 ? "permanent" : "transient";
  }
  // Bad input found while running (a validator's TypeError or RangeError) does not go away.
  if (err instanceof TypeError || err instanceof RangeError) return "permanent";
  return "transient";
}

/** How long "denied" failures are retried before they count as permanent. */
export const DENIED_GRACE_MS = 30_000;

/** The message of any thrown value (an Error's message, anything else as a string). */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** One line describing any thrown value. */
export function describe(err: unknown): string {
  return errorText(err).split("\n")[0];
}
