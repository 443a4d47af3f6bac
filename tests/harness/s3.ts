/**
 * A real S3 server for tests: moto (`python3 -m moto.server`, through moto_atomic.py, which
 * makes `If-None-Match: *` creates atomic as on real S3) on a random loopback address
 * 127.x.y.z and a free port, with one bucket created through the AWS SDK. Always used
 * through `withS3Server`, which stops the process even when the test fails:
 *
 *   await withS3Server(async (s3) => {
 *     const reg = new S3Registry({ bucket: s3.bucket, prefix: "t1", endpoint: s3.endpoint });
 *   });
 *
 * moto takes ~3 s to start: start one server per test file (in the outer test, steps inside).
 * moto is found under $AUTO_CONSUL_TOOLS (default <repo>/.tools)/moto. The SDK's default
 * credential chain is pointed at moto's dummy keys through the process environment
 * (AWS_ACCESS_KEY_ID=testing, ...), which also keeps the chain away from instance metadata.
 */
import { Proc, REPO } from "./proc.ts";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";

/** A bound, not a wait: moto answers in ~3 s idle, but a loaded 2-core machine (load 30) took > 20 s. */
const START_TIMEOUT_MS = 90_000;
const STOP_GRACE_MS = 5_000;
const OUTPUT_LINES = 100;

/** The dummy credentials and region moto accepts; set in the process environment on start. */
export const S3_TEST_ENV: Readonly<Record<string, string>> = {
  AWS_ACCESS_KEY_ID: "testing",
  AWS_SECRET_ACCESS_KEY: "testing",
  AWS_REGION: "us-east-1",
  AWS_EC2_METADATA_DISABLED: "true",
};

export interface S3Server {
  /** e.g. "http://127.31.7.9:41234" */
  readonly endpoint: string;
  /** The loopback address and port moto listens on (to start it again at the same place). */
  readonly host: string;
  readonly port: number;
  /** A bucket created at start. */
  readonly bucket: string;
  /** The environment the SDK needs to reach this server (already set in this process). */
  readonly env: Readonly<Record<string, string>>;
  /** An SDK client for raw access (planting objects); destroyed when the server stops. */
  readonly client: S3Client;
  /** Creates another bucket. */
  createBucket(name: string): Promise<void>;
  /** The last lines of moto's output. */
  output(): string;
}

/** Starts moto, runs `fn`, and stops moto whatever happens. */
export async function withS3Server<T>(fn: (s3: S3Server) => Promise<T>): Promise<T> {
  const server = await startS3Server();
  try {
    return await fn(server);
  } finally {
    await server.stop();
  }
}

/**
 * A random loopback address 127.x.y.z with x in 1..19 (the consul harness uses 20..250, so
 * S3 servers and consul agents never share an address).
 */
export function randomS3Ip(): string {
  const r = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo + 1));
  return `127.${r(1, 19)}.${r(0, 255)}.${r(1, 254)}`;
}

/** A free TCP port on `host` (bound to port 0, then released). */
export function freePort(host: string): number {
  const l = Deno.listen({ hostname: host, port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Where to start moto: by default a fresh address, a free port and a new bucket name. */
export interface S3ServerOptions {
  /** With `port`: start at this address again (moto is in-memory: the bucket is new). */
  host?: string;
  port?: number;
  bucket?: string;
}

/** Starts moto and creates a bucket. Call `stop()` in a `finally`. */
export async function startS3Server(
  opts: S3ServerOptions = {},
): Promise<S3Server & { stop(): Promise<void> }> {
  for (const [k, v] of Object.entries(S3_TEST_ENV)) Deno.env.set(k, v);
  const tools = Deno.env.get("AUTO_CONSUL_TOOLS") || `${REPO}/.tools`;
  const host = opts.host ?? randomS3Ip();
  const port = opts.port ?? freePort(host);
  const endpoint = `http://${host}:${port}`;
  // moto.server behind a launcher that makes conditional creates atomic (see moto_atomic.py).
  const moto = new Proc("/usr/bin/python3", [
    new URL("./moto_atomic.py", import.meta.url).pathname,
    ...["-H", host, "-p", String(port)],
  ], { env: { PYTHONPATH: `${tools}/moto/usr/lib/python3/dist-packages` }, keepLines: 0 });
  const tail = () => moto.tail(OUTPUT_LINES);
  const client = new S3Client({
    region: S3_TEST_ENV.AWS_REGION,
    endpoint,
    forcePathStyle: true,
    maxAttempts: 1,
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });

  const stop = async () => {
    client.destroy();
    await moto.stop("SIGTERM", STOP_GRACE_MS);
  };

  const bucket = opts.bucket ?? `auto-consul-test-${crypto.randomUUID().slice(0, 8)}`;
  try {
    await waitUntilAnswering(endpoint, () => !moto.running);
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (err) {
    await stop();
    throw new Error(`could not start moto at ${endpoint}: ${(err as Error).message}\n${tail()}`, {
      cause: err,
    });
  }
  return {
    endpoint,
    host,
    port,
    bucket,
    env: S3_TEST_ENV,
    client,
    createBucket: async (name) => {
      await client.send(new CreateBucketCommand({ Bucket: name }));
    },
    output: tail,
    stop,
  };
}

/** Polls `endpoint` until it answers 200: bounded in attempts and in time. */
async function waitUntilAnswering(endpoint: string, exited: () => boolean): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  let last = "no attempt";
  for (let attempt = 1; attempt <= 5_000 && Date.now() < deadline; attempt++) {
    if (exited()) throw new Error("moto exited during startup");
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 1_000);
    try {
      const res = await fetch(`${endpoint}/`, { signal: ac.signal });
      await res.body?.cancel();
      if (res.ok) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    } finally {
      clearTimeout(timer);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`moto did not answer within ${START_TIMEOUT_MS} ms (last: ${last})`);
}
