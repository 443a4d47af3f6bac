/**
 * Opening a registry by URL: `s3://bucket/prefix` or `file:///path`. Each scheme has a
 * parser (pure) and a factory (like go-discover's Providers map); the S3 backend, and with
 * it the AWS SDK, is imported only when an s3:// URL is opened.
 */
import { describe, RegistryError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Registry } from "./registry.ts";

export type RegistryLocation =
  | { scheme: "s3"; bucket: string; prefix: string }
  | { scheme: "file"; root: string; ignoreConditions: boolean };

export interface OpenOptions {
  /** S3 region (default: AWS_REGION, AWS_DEFAULT_REGION, us-east-1). */
  region?: string;
  /** S3 endpoint for S3-compatible stores (MinIO, moto); path-style addressing then. */
  endpoint?: string;
  /** Override the addressing style. */
  forcePathStyle?: boolean;
  /** S3 attempts per call (retries of throttling and network errors included). */
  maxAttempts?: number;
  /** Where the folder backend reports skipped entries (and a folder it created). */
  log?: Logger;
  /**
   * What to do about a registry folder that is missing (S3: nothing here; a missing bucket is
   * reported by the first request): "require" — a RegistryError naming it (exit 3);
   * "create" — create it when its parent exists, saying so in one line. Default: no check.
   * A path that is not a folder is an error either way.
   */
  missing?: "require" | "create";
}

type Parser = (url: string, rest: string) => RegistryLocation;
type Factory = (loc: RegistryLocation, opts: OpenOptions) => Promise<Registry>;

const PARSERS: Record<string, Parser> = { s3: parseS3Url, file: parseFileUrl };

/** The registry backends, by URL scheme. */
export const BACKENDS: Record<RegistryLocation["scheme"], Factory> = {
  s3: async (loc, opts) => {
    if (loc.scheme !== "s3") throw new TypeError(`expected an s3 location, got ${loc.scheme}`);
    const { S3Registry } = await import("./s3.ts");
    return new S3Registry({
      bucket: loc.bucket,
      prefix: loc.prefix,
      region: opts.region,
      endpoint: opts.endpoint,
      forcePathStyle: opts.forcePathStyle,
      maxAttempts: opts.maxAttempts,
    });
  },
  file: async (loc, opts) => {
    if (loc.scheme !== "file") throw new TypeError(`expected a file location, got ${loc.scheme}`);
    const { FileRegistry } = await import("./file.ts");
    if (opts.missing) await checkFolder(loc.root, opts.missing, opts.log);
    return new FileRegistry({
      root: loc.root,
      ignoreConditions: loc.ignoreConditions,
      log: opts.log,
    });
  },
};

/** Checks a registry folder exists (or creates it when asked and its parent exists). */
async function checkFolder(
  root: string,
  missing: "require" | "create",
  log?: Logger,
): Promise<void> {
  const url = `file://${root}`;
  const fail = (why: string, reason: string, err?: unknown) =>
    new RegistryError(`registry ${url} ${why}`, reason, { cause: err });
  let info: Deno.FileInfo | undefined;
  try {
    info = await Deno.stat(root);
  } catch (err) {
    if (err instanceof Deno.errors.NotADirectory) {
      throw fail("is not a folder (a part of its path is a file): check -r", "not-a-folder", err);
    }
    if (!(err instanceof Deno.errors.NotFound)) {
      const denied = err instanceof Deno.errors.PermissionDenied;
      throw fail(`cannot be read: ${describe(err)}`, denied ? "access-denied" : "io", err);
    }
  }
  if (info !== undefined) {
    if (!info.isDirectory) throw fail("is not a folder: check -r", "not-a-folder");
    return;
  }
  const parent = root.slice(0, root.lastIndexOf("/")) || "/";
  if (missing === "require") {
    throw fail(
      "does not exist: check -r (run creates it when its parent folder exists)",
      "no-registry",
    );
  }
  try {
    if (!(await Deno.stat(parent)).isDirectory) throw new Deno.errors.NotADirectory();
  } catch (err) {
    throw fail(
      `does not exist, nor does its parent folder ${parent}: check -r, or create ${parent}`,
      "no-registry",
      err,
    );
  }
  try {
    await Deno.mkdir(root);
  } catch (err) {
    if (!(err instanceof Deno.errors.AlreadyExists)) {
      const denied = err instanceof Deno.errors.PermissionDenied;
      throw fail(
        `cannot be created: ${describe(err)}`,
        denied ? "access-denied" : "read-only",
        err,
      );
    }
    return; // created meanwhile by another node
  }
  log?.info(`new registry at ${url}`);
}

/** Opens the registry a URL names. Throws TypeError for a bad URL; touches no network. */
export async function openRegistry(url: string, opts: OpenOptions = {}): Promise<Registry> {
  const loc = parseRegistryUrl(url);
  return await BACKENDS[loc.scheme](loc, opts);
}

/** Parses a registry URL. Pure; throws a one-line TypeError naming the bad part. */
export function parseRegistryUrl(url: string): RegistryLocation {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):(.*)$/s.exec(url);
  if (!m) {
    throw new TypeError(
      `invalid registry URL "${url}": expected s3://bucket/prefix or file:///absolute/path`,
    );
  }
  const scheme = m[1].toLowerCase();
  const parse = Object.hasOwn(PARSERS, scheme) ? PARSERS[scheme] : undefined;
  if (!parse) {
    throw new TypeError(
      `unsupported registry URL scheme "${m[1]}:" in "${url}": expected one of ` +
        Object.keys(PARSERS).map((s) => `${s}://`).join(", "),
    );
  }
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x1f\x7f\\]/.test(url)) {
    throw new TypeError(
      `invalid registry URL ${JSON.stringify(url)}: expected no control characters or backslashes`,
    );
  }
  return parse(url, m[2]);
}

const BUCKET_RE = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
/**
 * The legacy us-east-1 rule: up to 255 letters, digits, ".", "_" or "-"; only names that
 * need it (an upper-case letter or "_") are judged by it.
 */
const LEGACY_BUCKET_RE = /^(?=.*[A-Z_])[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]$/;

/** Why `name` is not a valid S3 bucket name, or undefined when it is fine. */
export function bucketNameProblem(name: string): string | undefined {
  // Buckets made in us-east-1 before 2018 may have upper case and "_" (up to 255 characters);
  // the gem's users may still have them, so they are accepted (path-style reaches them).
  if (!BUCKET_RE.test(name) && !LEGACY_BUCKET_RE.test(name)) {
    return "expected 3-63 lowercase letters, digits, '.' or '-', starting and ending with a letter or digit";
  }
  if (name.includes("..")) return "expected no two adjacent periods";
  if (/^\d+\.\d+\.\d+\.\d+$/.test(name)) return "expected a name, not an IP address";
  return undefined;
}

function parseS3Url(url: string, rest: string): RegistryLocation {
  if (!rest.startsWith("//")) {
    throw new TypeError(`invalid registry URL "${url}": expected s3://bucket/prefix`);
  }
  if (/[?#]/.test(rest)) {
    throw new TypeError(
      `invalid registry URL "${url}": expected no query or fragment in s3://bucket/prefix`,
    );
  }
  const path = rest.slice(2);
  const slash = path.indexOf("/");
  const bucket = slash < 0 ? path : path.slice(0, slash);
  if (bucket === "") {
    throw new TypeError(`invalid registry URL "${url}": missing bucket name in s3://bucket/prefix`);
  }
  const why = bucketNameProblem(bucket);
  if (why) throw new TypeError(`invalid S3 bucket name "${bucket}" in "${url}": ${why}`);
  const prefix = slash < 0 ? "" : path.slice(slash + 1).replace(/^\/+|\/+$/g, "");
  for (const seg of prefix === "" ? [] : prefix.split("/")) {
    if (seg === "" || seg === "." || seg === "..") {
      throw new TypeError(
        `invalid S3 prefix "${prefix}" in "${url}": expected no empty, "." or ".." path segment`,
      );
    }
  }
  return { scheme: "s3", bucket, prefix };
}

function parseFileUrl(url: string, rest: string): RegistryLocation {
  const hash = rest.indexOf("#");
  if (hash >= 0) throw new TypeError(`invalid registry URL "${url}": expected no fragment`);
  const q = rest.indexOf("?");
  const raw = q < 0 ? rest : rest.slice(0, q);
  const path = raw.startsWith("///")
    ? raw.slice(2)
    : raw.startsWith("//localhost/")
    ? raw.slice(11)
    : "";
  if (path === "") {
    throw new TypeError(
      `invalid registry URL "${url}": expected an absolute path, file:///absolute/path`,
    );
  }
  let root: string;
  try {
    root = decodeURIComponent(path);
  } catch {
    throw new TypeError(`invalid registry URL "${url}": expected valid percent-encoding`);
  }
  if (root.includes("\0") || root.split("/").some((seg) => seg === "." || seg === "..")) {
    throw new TypeError(`invalid registry URL "${url}": expected no NUL, "." or ".." in the path`);
  }
  root = root.length > 1 ? root.replace(/\/+$/, "") : root;
  let ignoreConditions = false;
  for (const [name, value] of new URLSearchParams(q < 0 ? "" : rest.slice(q + 1))) {
    if (name === "ignore-conditions" && (value === "1" || value === "true")) {
      ignoreConditions = true;
    } else {
      throw new TypeError(
        `unknown option "${name}=${value}" in registry URL "${url}": expected only ignore-conditions=1 (tests)`,
      );
    }
  }
  return { scheme: "file", root, ignoreConditions };
}
