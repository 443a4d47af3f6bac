/**
 * Validation of the keys a caller gives to a Registry (both backends apply the same rules,
 * so code that works on a folder works on a bucket). Keys read back from a store are not
 * checked here: they are untrusted data, parsed by `layout.ts`.
 */

/** Longest key accepted, in UTF-8 bytes (S3's own limit). */
export const MAX_KEY_BYTES = 1024;

/** Why `key` is not a safe registry key, or undefined when it is fine. */
export function keyProblem(key: string): string | undefined {
  if (key === "") return "expected a non-empty key";
  if (new TextEncoder().encode(key).length > MAX_KEY_BYTES) {
    return `expected at most ${MAX_KEY_BYTES} bytes`;
  }
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x1f\x7f]/.test(key)) return "expected no control characters (NUL, newline, ...)";
  if (key.includes("\\")) return "expected '/' as separator, not '\\'";
  if (key.startsWith("/")) return "expected a relative key, not an absolute path";
  for (const seg of key.split("/")) {
    if (seg === "") return "expected no empty path segment ('//' or a trailing '/')";
    if (seg === "." || seg === "..") return "expected no '.' or '..' path segment";
  }
  return undefined;
}

/** Throws a TypeError naming the key when it is not a safe registry key. */
export function assertKey(key: string): void {
  const why = keyProblem(key);
  if (why !== undefined) throw new TypeError(`invalid registry key ${JSON.stringify(key)}: ${why}`);
}

/**
 * Throws a TypeError when `dir` is not a listable prefix: "" (everything), a directory
 * ending with "/" (e.g. "servers/"), or the start of a key.
 */
export function assertListPrefix(dir: string): void {
  if (dir === "") return;
  const body = dir.endsWith("/") ? dir.slice(0, -1) : dir;
  const why = keyProblem(body);
  if (why !== undefined) {
    throw new TypeError(`invalid registry listing prefix ${JSON.stringify(dir)}: ${why}`);
  }
}
