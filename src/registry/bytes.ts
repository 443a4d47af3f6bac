/** Bounded reading of untrusted bodies: never more than the caller's limit is buffered. */

/** Joins byte chunks into one array. */
export function concatBytes(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/**
 * Reads a stream up to `maxBytes`. Returns the bytes, or undefined when the stream holds
 * more (it is then cancelled, so the rest is never downloaded).
 */
export async function readStreamAtMost(
  stream: ReadableStream<Uint8Array>,
  maxBytes: number,
): Promise<Uint8Array | undefined> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let n = 0;
  try {
    // bounded: every round adds at least one byte or ends, and stops past maxBytes
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      n += value.length;
      if (n > maxBytes) {
        await reader.cancel();
        return undefined;
      }
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  return concatBytes(chunks);
}

/** The error of a body larger than the caller's limit (`size`: a number or "more than N"). */
export function tooBig(key: string, size: number | string, maxBytes: number): RangeError {
  return new RangeError(
    `registry object "${key}" is ${size} bytes: expected at most ${maxBytes} bytes`,
  );
}
