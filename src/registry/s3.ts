/**
 * The `s3://bucket/prefix` registry, through the AWS SDK. Loaded lazily by `open.ts`, so
 * commands that never touch S3 never load the SDK.
 *
 * - Credentials come only from the SDK's default chain (env, profile, container, instance
 *   role); this module never reads or prints them.
 * - `createIfAbsent` is `PutObject` with `If-None-Match: *`: the store answers 412 to all
 *   but one concurrent creator (AWS since 2024, MinIO, R2, moto).
 * - Every call has short socket timeouts and an overall deadline, so a dead endpoint never
 *   wedges the caller; throttling is retried by the SDK's standard retry strategy.
 */
import {
  DeleteObjectCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { RegistryError } from "../errors.ts";
import { readStreamAtMost, tooBig } from "./bytes.ts";
import { assertKey, assertListPrefix } from "./key.ts";
import type { CreateOutcome, Listing, ObjectInfo, Registry } from "./registry.ts";
import { errorCode, httpStatus, isConditionFailure, toRegistryError } from "./s3_errors.ts";

/** A listing stops with an error beyond this many pages (1,000 keys each). */
export const MAX_LIST_PAGES = 1000;

export interface S3RegistryOptions {
  bucket: string;
  /** Key prefix without leading or trailing "/"; "" for the whole bucket. */
  prefix: string;
  /** Default: AWS_REGION, AWS_DEFAULT_REGION, else us-east-1 (S3 redirects are followed). */
  region?: string;
  /** A custom endpoint (MinIO, moto, R2), e.g. "http://127.0.0.1:9000". */
  endpoint?: string;
  /** Path-style addressing; default: true when `endpoint` is set. */
  forcePathStyle?: boolean;
  /** Attempts per call, including retries of throttling and network errors. Default 3. */
  maxAttempts?: number;
  /** TCP connect timeout. Default 3,000 ms. */
  connectionTimeoutMs?: number;
  /** Timeout of one HTTP request (and of an idle socket). Default 10,000 ms. */
  requestTimeoutMs?: number;
  /** Deadline of one call, all attempts included. Default 30,000 ms. */
  operationTimeoutMs?: number;
  /** Keys per listing page (S3's maximum and default: 1,000). */
  listPageSize?: number;
  /** A listing fails beyond this many pages. Default MAX_LIST_PAGES. */
  maxListPages?: number;
}

export class S3Registry implements Registry {
  readonly url: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly endpoint: string | undefined;
  readonly #client: S3Client;
  readonly #deadlineMs: number;
  readonly #pageSize: number | undefined;
  readonly #maxPages: number;

  constructor(opts: S3RegistryOptions) {
    if (opts.bucket === "") throw new TypeError('invalid S3 bucket "": expected a bucket name');
    if (opts.prefix.startsWith("/") || opts.prefix.endsWith("/")) {
      throw new TypeError(
        `invalid S3 prefix "${opts.prefix}": expected no leading or trailing "/"`,
      );
    }
    this.bucket = opts.bucket;
    this.prefix = opts.prefix;
    this.endpoint = opts.endpoint === undefined ? undefined : checkEndpoint(opts.endpoint);
    this.url = `s3://${opts.bucket}${opts.prefix ? "/" + opts.prefix : ""}`;
    this.#deadlineMs = opts.operationTimeoutMs ?? 30_000;
    this.#pageSize = opts.listPageSize;
    this.#maxPages = opts.maxListPages ?? MAX_LIST_PAGES;
    this.#client = new S3Client({
      region: opts.region ?? Deno.env.get("AWS_REGION") ?? Deno.env.get("AWS_DEFAULT_REGION") ??
        "us-east-1",
      endpoint: this.endpoint,
      forcePathStyle: opts.forcePathStyle ?? this.endpoint !== undefined,
      followRegionRedirects: true,
      maxAttempts: opts.maxAttempts ?? 3,
      // checksums only where S3 requires them: S3-compatible stores differ in support
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      requestHandler: {
        connectionTimeout: opts.connectionTimeoutMs ?? 3_000,
        requestTimeout: opts.requestTimeoutMs ?? 10_000,
        socketTimeout: opts.requestTimeoutMs ?? 10_000,
        throwOnRequestTimeout: true, // otherwise the SDK only logs a warning and waits on
      },
    });
  }

  async list(dir: string): Promise<Listing> {
    assertListPrefix(dir);
    const full = this.#full(dir);
    const strip = this.prefix ? this.prefix.length + 1 : 0;
    const objects: ObjectInfo[] = [];
    let storeNow: Date | undefined;
    let token: string | undefined;
    for (let page = 0;; page++) {
      if (page >= this.#maxPages) {
        throw new RegistryError(
          `listing ${this.url}/${dir} returned more than ${this.#maxPages} pages: ` +
            `expected a registry of at most ${this.#maxPages * (this.#pageSize ?? 1000)} objects`,
          "too-many-objects",
        );
      }
      const cmd = new ListObjectsV2Command({
        Bucket: this.bucket,
        Prefix: full,
        ContinuationToken: token,
        MaxKeys: this.#pageSize,
        EncodingType: "url", // keys with control characters would break the XML otherwise
      });
      const dateOf = captureDate(cmd);
      const out = await this.#call(
        "list",
        full,
        (signal) => this.#client.send(cmd, { abortSignal: signal }),
      );
      storeNow ??= dateOf();
      for (const o of out.Contents ?? []) {
        if (o.Key === undefined) continue;
        const key = decodeKey(o.Key);
        if (!key.startsWith(full)) continue;
        objects.push({
          key: key.slice(strip),
          lastModified: o.LastModified ?? new Date(0),
          size: o.Size ?? 0,
        });
      }
      if (!out.IsTruncated) break;
      token = out.NextContinuationToken;
      if (!token) {
        throw new RegistryError(
          `listing ${this.url}/${dir} was truncated without a continuation token`,
          "s3-error",
        );
      }
    }
    return { objects, storeNow: storeNow ?? new Date() };
  }

  async get(key: string, maxBytes: number): Promise<Uint8Array | undefined> {
    assertKey(key);
    const full = this.#full(key);
    return await this.#call("get", full, async (signal) => {
      // Ask for one byte more than allowed: the store never sends a big body whole.
      let out = await this.#getObject(full, `bytes=0-${maxBytes}`, signal);
      if (out === "empty") out = await this.#getObject(full, undefined, signal);
      if (out === undefined || out === "empty") return undefined;
      const size = totalSize(out);
      const stream = out.Body?.transformToWebStream() as ReadableStream<Uint8Array> | undefined;
      if (size !== undefined && size > maxBytes) {
        await stream?.cancel();
        throw tooBig(key, String(size), maxBytes);
      }
      if (stream === undefined) return new Uint8Array();
      const bytes = await readStreamAtMost(stream, maxBytes);
      if (bytes === undefined) throw tooBig(key, `more than ${maxBytes}`, maxBytes);
      return bytes;
    });
  }

  async put(key: string, body: Uint8Array): Promise<void> {
    assertKey(key);
    const full = this.#full(key);
    await this.#call("put", full, (signal) =>
      this.#client.send(
        new PutObjectCommand({ Bucket: this.bucket, Key: full, Body: body }),
        { abortSignal: signal },
      ));
  }

  async createIfAbsent(key: string, body: Uint8Array): Promise<CreateOutcome> {
    assertKey(key);
    const full = this.#full(key);
    return await this.#call("create", full, async (signal) => {
      try {
        await this.#client.send(
          new PutObjectCommand({ Bucket: this.bucket, Key: full, Body: body, IfNoneMatch: "*" }),
          { abortSignal: signal },
        );
        return "created";
      } catch (err) {
        if (!isConditionFailure(err)) throw err;
        if (attemptsOf(err) <= 1) return "exists";
        // The SDK retried: an earlier attempt may have created the object and lost its answer
        // (a timeout, a 5xx after the write). The object is ours when it holds our bytes
        // (claim bodies name their node, so no other creator writes the same bytes).
        const now = await this.get(key, body.length);
        return now !== undefined && sameBytes(now, body) ? "created" : "exists";
      }
    });
  }

  async delete(key: string): Promise<void> {
    assertKey(key);
    const full = this.#full(key);
    await this.#call("delete", full, async (signal) => {
      try {
        await this.#client.send(
          new DeleteObjectCommand({ Bucket: this.bucket, Key: full }),
          { abortSignal: signal },
        );
      } catch (err) {
        if (errorCode(err) !== "NoSuchKey") throw err;
      }
    });
  }

  close(): void {
    this.#client.destroy();
  }

  #full(rel: string): string {
    return this.prefix ? `${this.prefix}/${rel}` : rel;
  }

  /** GetObject; undefined when the key is missing, "empty" when a range cannot apply. */
  async #getObject(
    full: string,
    range: string | undefined,
    signal: AbortSignal,
  ): Promise<GetObjectCommandOutput | undefined | "empty"> {
    try {
      return await this.#client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: full, Range: range }),
        { abortSignal: signal },
      );
    } catch (err) {
      if (errorCode(err) === "NoSuchKey") return undefined;
      // S3 answers 416 to "bytes=0-N" when the object is empty
      if (range && (httpStatus(err) === 416 || errorCode(err) === "InvalidRange")) return "empty";
      throw err;
    }
  }

  /** Runs one call under the overall deadline; maps every failure to a RegistryError. */
  async #call<T>(op: string, full: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), this.#deadlineMs);
    try {
      return await fn(ac.signal);
    } catch (err) {
      if (err instanceof RangeError) throw err; // oversized body: the caller skips it
      throw toRegistryError(err, {
        op,
        bucket: this.bucket,
        key: full,
        endpoint: this.endpoint,
        timedOut: ac.signal.aborted,
        timeoutMs: this.#deadlineMs,
      });
    } finally {
      clearTimeout(timer);
    }
  }
}

/** How many attempts the SDK made for the call that failed with `err` (1 when unknown). */
function attemptsOf(err: unknown): number {
  const n = (err as { $metadata?: { attempts?: number } })?.$metadata?.attempts;
  return typeof n === "number" && n > 0 ? n : 1;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Validates a custom endpoint: an http(s) URL without credentials, path, query. */
export function checkEndpoint(endpoint: string): string {
  let u: URL;
  try {
    u = new URL(endpoint);
  } catch {
    throw new TypeError(`invalid S3 endpoint "${endpoint}": expected a URL like http://host:port`);
  }
  if ((u.protocol !== "http:" && u.protocol !== "https:") || u.username || u.password) {
    throw new TypeError(
      `invalid S3 endpoint "${u.protocol}//${u.host}": expected http:// or https:// without credentials`,
    );
  }
  return endpoint.replace(/\/+$/, "");
}

/**
 * Records the HTTP `Date` header of the answer to `cmd` (the store's clock), through a
 * middleware on the command's own stack, so concurrent calls do not mix their dates.
 */
function captureDate(cmd: ListObjectsV2Command): () => Date | undefined {
  let header: string | undefined;
  cmd.middlewareStack.add(
    (next) => async (args) => {
      const result = await next(args);
      const headers = (result.response as { headers?: Record<string, string> }).headers;
      header = headers?.["date"] ?? headers?.["Date"];
      return result;
    },
    { step: "deserialize", name: "autoConsulCaptureDate" },
  );
  return () => {
    if (header === undefined) return undefined;
    const d = new Date(header);
    return Number.isNaN(d.getTime()) ? undefined : d;
  };
}

/** Undoes `EncodingType=url` ("+" is a space, as AWS encodes it). */
function decodeKey(encoded: string): string {
  try {
    return decodeURIComponent(encoded.replace(/\+/g, " "));
  } catch {
    return encoded; // not valid percent-encoding: keep it raw, the parser will reject it
  }
}

/** The full object size: from Content-Range ("bytes 0-255/1048576") or Content-Length. */
function totalSize(out: GetObjectCommandOutput): number | undefined {
  const m = out.ContentRange ? /\/(\d+)$/.exec(out.ContentRange) : null;
  if (m) return Number(m[1]);
  return out.ContentLength;
}
