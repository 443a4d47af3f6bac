/**
 * A Registry in memory on a given clock, for unit tests of the logic above the registry.
 * `failures` makes the next N operations (matching `failing`) throw (a store that is briefly unreachable);
 * `ignoreConditions` makes it an old store that ignores create-if-absent.
 */
import { RegistryError } from "../../src/errors.ts";
import type { CreateOutcome, Listing, Registry } from "../../src/registry/registry.ts";

export class MemoryRegistry implements Registry {
  readonly url = "memory://test";
  readonly objects = new Map<string, { body: Uint8Array; lastModified: Date }>();
  /** The next this many operations (those matching `failing`) fail as "unreachable". */
  failures = 0;
  failing: RegExp = /./;
  /** Every operation, in order ("list servers/", "put agents/..."). */
  readonly ops: string[] = [];

  constructor(
    private readonly clock: () => number,
    private readonly opts: { ignoreConditions?: boolean } = {},
  ) {}

  #op(what: string): void {
    this.ops.push(what);
    if (this.failures > 0 && this.failing.test(what)) {
      this.failures--;
      throw new RegistryError(`registry ${this.url} is unreachable (test)`, "unreachable");
    }
  }

  /** Sets an object as if written at `atMs` (default: now), bypassing the failure switch. */
  plant(key: string, body: string, atMs = this.clock()): void {
    this.objects.set(key, { body: new TextEncoder().encode(body), lastModified: new Date(atMs) });
  }

  keys(prefix = ""): string[] {
    return [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort();
  }

  list(dir: string): Promise<Listing> {
    this.#op(`list ${dir}`);
    const objects = [...this.objects.entries()]
      .filter(([k]) => k.startsWith(dir))
      .map(([key, o]) => ({ key, lastModified: o.lastModified, size: o.body.length }));
    return Promise.resolve({ objects, storeNow: new Date(this.clock()) });
  }

  get(key: string, maxBytes: number): Promise<Uint8Array | undefined> {
    this.#op(`get ${key}`);
    const o = this.objects.get(key);
    if (o && o.body.length > maxBytes) {
      throw new RangeError(`object ${key} is ${o.body.length} bytes: expected at most ${maxBytes}`);
    }
    return Promise.resolve(o?.body);
  }

  put(key: string, body: Uint8Array): Promise<void> {
    this.#op(`put ${key}`);
    this.objects.set(key, { body, lastModified: new Date(this.clock()) });
    return Promise.resolve();
  }

  createIfAbsent(key: string, body: Uint8Array): Promise<CreateOutcome> {
    this.#op(`create ${key}`);
    if (this.objects.has(key) && !this.opts.ignoreConditions) return Promise.resolve("exists");
    this.objects.set(key, { body, lastModified: new Date(this.clock()) });
    return Promise.resolve("created");
  }

  delete(key: string): Promise<void> {
    this.#op(`delete ${key}`);
    this.objects.delete(key);
    return Promise.resolve();
  }

  close(): void {}
}
