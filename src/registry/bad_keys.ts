/**
 * Bad registry keys, reported without flooding the log: each bad key is warned about once per
 * process (per registry), and every listing that skipped any ends with one line counting them
 * (a warning when it found new ones, debug otherwise). A registry holding 20,000 junk objects
 * costs a long-running `run` 20,000 lines once, not on every listing.
 */
import type { Logger } from "../log.ts";

const warned = new Set<string>();
/** Bounds the memory of what was warned about; beyond it keys are warned about again. */
const MAX_REMEMBERED = 100_000;

export class BadKeyReport {
  readonly #log: Logger;
  readonly #scope: string;
  readonly #where: string;
  #count = 0;
  #fresh = 0;

  /** `scope`: the registry's URL; `where`: the listing, for the count line ("servers/"). */
  constructor(log: Logger, scope: string, where: string) {
    this.#log = log;
    this.#scope = scope;
    this.#where = where;
  }

  /** Counts a skipped key, and warns about it unless this process already did. */
  skip(key: string, fields: Record<string, unknown> = {}, msg = "skipping registry key"): void {
    this.#count++;
    const id = `${this.#scope}\u0000${key}`;
    if (warned.has(id)) return;
    if (warned.size < MAX_REMEMBERED) warned.add(id);
    this.#fresh++;
    this.#log.warn(msg, { key, ...fields });
  }

  /** The count line of this listing (nothing when no key was skipped). */
  done(): void {
    if (this.#count === 0) return;
    const fields = { in: this.#where, skipped: this.#count, new: this.#fresh };
    if (this.#fresh > 0) this.#log.warn("skipped bad registry keys", fields);
    else this.#log.debug("skipped bad registry keys (warned about before)", fields);
  }
}
