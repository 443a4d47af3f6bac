/**
 * The Registry: a shared store of small objects (an S3 bucket prefix, or a local folder)
 * through which nodes find each other. Backends only move bytes; deciding what the bytes
 * mean (heartbeats, places, expiry) happens in pure functions elsewhere (`heartbeats.ts`).
 *
 * Keys given to and returned by a Registry are relative to the registry's prefix and use
 * "/" as separator, e.g. "servers/20140516092731-server1".
 */

/** One object as listed. */
export interface ObjectInfo {
  /** Key relative to the registry prefix, e.g. "servers/20140516092731-server1". */
  key: string;
  /** The store's own modification time (S3 LastModified; file mtime). */
  lastModified: Date;
  /** Size in bytes. */
  size: number;
}

/** A listing together with the store's clock at the time of listing (for skew-free expiry). */
export interface Listing {
  objects: ObjectInfo[];
  /** The store's clock when it answered (S3: the response's Date header; folder: local clock). */
  storeNow: Date;
}

export type CreateOutcome = "created" | "exists";

export interface Registry {
  /** The registry URL, for messages (never carries credentials). */
  readonly url: string;
  /** All objects whose key starts with `dir` (e.g. "servers/"). */
  list(dir: string): Promise<Listing>;
  /**
   * An object's body, or undefined when it does not exist. Bodies larger than `maxBytes`
   * are not read whole: a RangeError is thrown naming the key and the size.
   */
  get(key: string, maxBytes: number): Promise<Uint8Array | undefined>;
  /** Write (overwrite) an object. */
  put(key: string, body: Uint8Array): Promise<void>;
  /** Create only when absent: exactly one of many concurrent creators gets "created". */
  createIfAbsent(key: string, body: Uint8Array): Promise<CreateOutcome>;
  /** Delete an object; deleting a missing object is not an error. */
  delete(key: string): Promise<void>;
  /** Release resources (HTTP sockets). */
  close(): void;
}
