/**
 * The two registry backends behind one test interface, so every suite runs unchanged on a
 * folder and on S3 (moto through the real SDK). Each `fresh()` gives an empty namespace
 * (a new sub-folder, or a new key prefix in the test bucket) plus raw access to the store
 * underneath, for planting objects the Registry itself would refuse to write.
 */
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3";
import { Logger } from "../../src/log.ts";
import { FileRegistry } from "../../src/registry/file.ts";
import type { Registry } from "../../src/registry/registry.ts";
import { S3Registry } from "../../src/registry/s3.ts";
import type { S3Server } from "../harness/s3.ts";

export interface Fixture {
  registry: Registry;
  /** The store's key of a registry key (S3: with the prefix; folder: the relative path). */
  rawKey(key: string): string;
  /** Writes an object straight into the store, bypassing the Registry's key checks. */
  plant(key: string, body: Uint8Array): Promise<void>;
  /** Whether `plant` can represent this key ("servers/../x" is no file name). */
  canPlant(key: string): boolean;
  /** Every key in the store under this fixture's namespace, as the store names them. */
  rawKeys(): Promise<string[]>;
  /** The raw bytes the store holds for a key. */
  readRaw(key: string): Promise<Uint8Array | undefined>;
  /**
   * Makes the given objects at least `seconds` older than anything written afterwards
   * (folder: moves the mtime back; S3: LastModified cannot be set, so this waits).
   */
  makeOlder(keys: string[], seconds: number): Promise<void>;
  /** Folder only: the root folder. */
  root?: string;
}

export interface Backend {
  name: string;
  fresh(opts?: { log?: Logger; ignoreConditions?: boolean }): Promise<Fixture>;
}

let counter = 0;
const next = () => `t${++counter}-${crypto.randomUUID().slice(0, 6)}`;

/** Folder backend: each fixture is a new sub-folder of `base`. */
export function fileBackend(base: string): Backend {
  return {
    name: "file",
    fresh: async (opts = {}) => {
      const root = `${base}/${next()}`;
      await Deno.mkdir(root);
      const registry = new FileRegistry({
        root,
        log: opts.log ?? quietLog(),
        ignoreConditions: opts.ignoreConditions,
      });
      return {
        registry,
        root,
        rawKey: (key) => key,
        canPlant: (key) =>
          !key.startsWith("/") && !key.includes("\0") &&
          key.split("/").every((s) =>
            s !== "" && s !== "." && s !== ".." && new TextEncoder().encode(s).length <= 255
          ),
        plant: async (key, body) => {
          const path = `${root}/${key}`;
          await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
          await Deno.writeFile(path, body);
        },
        rawKeys: async () => (await walkFiles(root)).sort(),
        readRaw: async (key) => {
          try {
            return await Deno.readFile(`${root}/${key}`);
          } catch (err) {
            if (err instanceof Deno.errors.NotFound) return undefined;
            throw err;
          }
        },
        makeOlder: async (keys, seconds) => {
          const when = new Date(Date.now() - seconds * 1000 - 1000);
          for (const k of keys) await Deno.utime(`${root}/${k}`, when, when);
        },
      };
    },
  };
}

/** S3 backend: each fixture is a new prefix in the server's bucket. */
export function s3Backend(server: S3Server): Backend {
  return {
    name: "s3",
    fresh: (opts = {}) => {
      if (opts.ignoreConditions) throw new Error("moto honours conditions: no ignore mode");
      const prefix = `reg/${next()}`;
      const registry = new S3Registry({ bucket: server.bucket, prefix, endpoint: server.endpoint });
      const rawKey = (key: string) => `${prefix}/${key}`;
      return Promise.resolve({
        registry,
        rawKey,
        // the SDK cannot send keys with line breaks; everything else is a valid S3 key
        canPlant: (key: string) => !/[\r\n\0]/.test(key),
        plant: async (key: string, body: Uint8Array) => {
          await server.client.send(
            new PutObjectCommand({ Bucket: server.bucket, Key: rawKey(key), Body: body }),
          );
        },
        rawKeys: async () => {
          const keys: string[] = [];
          let token: string | undefined;
          for (let page = 0; page < 100; page++) {
            const out = await server.client.send(
              new ListObjectsV2Command({
                Bucket: server.bucket,
                Prefix: `${prefix}/`,
                ContinuationToken: token,
              }),
            );
            keys.push(...(out.Contents ?? []).map((o) => o.Key ?? ""));
            token = out.NextContinuationToken;
            if (!out.IsTruncated) break;
          }
          return keys.sort();
        },
        readRaw: async (key: string) => {
          try {
            const out = await server.client.send(
              new GetObjectCommand({ Bucket: server.bucket, Key: rawKey(key) }),
            );
            return await out.Body?.transformToByteArray();
          } catch (err) {
            if ((err as Error).name === "NoSuchKey") return undefined;
            throw err;
          }
        },
        makeOlder: async (_keys: string[], seconds: number) => {
          // LastModified and the Date header are whole seconds (truncated), so an age read
          // back can be up to a second short: wait a second and a half beyond `seconds`.
          await new Promise((r) => setTimeout(r, seconds * 1000 + 1500));
        },
      });
    },
  };
}

/** A logger whose JSON lines are kept in memory, for asserting warnings. */
export function captureLog(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = new Logger({
    format: "json",
    level: "debug",
    component: "test",
    sink: (line) => lines.push(JSON.parse(line)),
  });
  return { log, lines };
}

/** A logger that drops everything. */
export function quietLog(): Logger {
  return new Logger({ sink: () => {} });
}

async function walkFiles(root: string, rel = "", depth = 0): Promise<string[]> {
  if (depth > 32) throw new Error(`folder ${root}/${rel} nested too deep`);
  const out: string[] = [];
  for await (const e of Deno.readDir(rel ? `${root}/${rel}` : root)) {
    const key = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory) out.push(...await walkFiles(root, key, depth + 1));
    else out.push(key);
  }
  return out;
}
