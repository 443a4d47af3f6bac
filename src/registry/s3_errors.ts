/**
 * Turns what the AWS SDK throws into a RegistryError with a one-line message and a
 * machine-readable reason. Pure: works on any SDK-like error object (name, Code, code,
 * $metadata.httpStatusCode), so the mapping is unit-tested without a server.
 * Messages never carry credentials: they are built from codes, statuses and names only.
 */
import { describe, RegistryError } from "../errors.ts";

/** What was being done, for the message. */
export interface S3ErrorContext {
  /** "list", "get", "put", "create", "delete". */
  op: string;
  bucket: string;
  /** The full object key or listing prefix. */
  key: string;
  /** The endpoint, when not AWS's own (for "unreachable"). */
  endpoint?: string;
  /** True when the operation's own deadline fired. */
  timedOut?: boolean;
  /** The deadline in milliseconds, for the message. */
  timeoutMs?: number;
}

interface SdkLikeError {
  name?: unknown;
  Code?: unknown;
  code?: unknown;
  message?: unknown;
  $metadata?: { httpStatusCode?: unknown; attempts?: unknown };
  cause?: unknown;
}

const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
  "ECONNABORTED",
  "TimeoutError",
  "RequestTimeout",
  "RequestTimeoutException",
  "NetworkingError",
]);
const THROTTLE_CODES = new Set([
  "SlowDown",
  "Throttling",
  "ThrottlingException",
  "ThrottledException",
  "TooManyRequests",
  "TooManyRequestsException",
  "RequestLimitExceeded",
  "RequestThrottled",
  "RequestThrottledException",
  "ServiceUnavailable",
]);
const DENIED_CODES = new Set([
  "AccessDenied",
  "AllAccessDisabled",
  "InvalidAccessKeyId",
  "SignatureDoesNotMatch",
  "ExpiredToken",
  "InvalidToken",
  "TokenRefreshRequired",
  "AccountProblem",
]);

/** The error's code: S3's `Code`, Node's `code` (ECONNREFUSED), or its class name. */
export function errorCode(err: unknown): string {
  if (typeof err !== "object" || err === null) return "";
  const e = err as SdkLikeError;
  for (const v of [e.Code, e.code, e.name]) {
    if (typeof v === "string" && v !== "" && v !== "Error") return v;
  }
  return "";
}

/** The HTTP status the store answered with, or 0 when there was no answer. */
export function httpStatus(err: unknown): number {
  if (typeof err !== "object" || err === null) return 0;
  const s = (err as SdkLikeError).$metadata?.httpStatusCode;
  return typeof s === "number" ? s : 0;
}

/** True for the answers meaning "the object already exists" to a create-if-absent. */
export function isConditionFailure(err: unknown): boolean {
  const code = errorCode(err);
  const status = httpStatus(err);
  return status === 412 || code === "PreconditionFailed" || code === "ConditionalRequestConflict";
}

/** Maps any error thrown by an S3 call to a RegistryError (already mapped ones pass through). */
export function toRegistryError(err: unknown, ctx: S3ErrorContext): RegistryError {
  if (err instanceof RegistryError) return err;
  const code = errorCode(err);
  const status = httpStatus(err);
  const target = `s3://${ctx.bucket}/${ctx.key}`;
  const mk = (message: string, reason: string) =>
    new RegistryError(message, reason, { cause: err });

  if (ctx.timedOut) {
    return mk(
      `S3 ${ctx.op} of ${target} timed out after ${(ctx.timeoutMs ?? 0) / 1000} s` +
        `${ctx.endpoint ? ` (endpoint ${ctx.endpoint})` : ""}`,
      "unreachable",
    );
  }
  if (code === "NoSuchBucket") {
    return mk(`S3 bucket "${ctx.bucket}" does not exist (${ctx.op} ${target})`, "no-such-bucket");
  }
  if (DENIED_CODES.has(code) || status === 403) {
    return mk(
      `S3 denied ${ctx.op} of ${target}: ${code || `HTTP ${status}`} ` +
        `(check the credentials found by the AWS SDK's default chain and the bucket policy)`,
      "access-denied",
    );
  }
  if (code === "CredentialsProviderError") {
    return mk(
      `no AWS credentials for S3 ${ctx.op} of ${target}: expected them from the SDK's default ` +
        `chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, or an instance role)`,
      "no-credentials",
    );
  }
  if (THROTTLE_CODES.has(code) || status === 503 || status === 429) {
    const attempts = (err as SdkLikeError).$metadata?.attempts;
    return mk(
      `S3 throttled ${ctx.op} of ${target}: ${code || `HTTP ${status}`}` +
        `${typeof attempts === "number" ? ` after ${attempts} attempts` : ""}`,
      "throttled",
    );
  }
  if (NETWORK_CODES.has(code) || code === "AbortError" || (status === 0 && isNetworkCause(err))) {
    return mk(
      `S3 endpoint ${ctx.endpoint ?? "(AWS)"} is unreachable for ${ctx.op} of ${target}: ` +
        `${code || "no answer"}`,
      "unreachable",
    );
  }
  const detail = code || (status ? `HTTP ${status}` : describe(err).slice(0, 200));
  return mk(`S3 ${ctx.op} of ${target} failed: ${detail}`, "s3-error");
}

function isNetworkCause(err: unknown): boolean {
  const cause = (err as SdkLikeError | null)?.cause;
  return cause !== undefined && NETWORK_CODES.has(errorCode(cause));
}
