/**
 * Tiny loopback HTTP servers standing in for S3 where moto cannot help: canned answers
 * (403 AccessDenied, 503 SlowDown, a skewed Date header) and an endpoint that accepts
 * connections and never answers. The real AWS SDK talks to them; both are always closed.
 */
import { randomS3Ip } from "./s3.ts";

/** Serves `handler` on a random 127.x address; `fn` gets the endpoint URL. */
export async function withCannedS3(
  handler: (req: Request) => Response | Promise<Response>,
  fn: (endpoint: string) => Promise<void>,
): Promise<void> {
  const server = Deno.serve({ hostname: randomS3Ip(), port: 0, onListen: () => {} }, handler);
  try {
    await fn(`http://${server.addr.hostname}:${server.addr.port}`);
  } finally {
    await server.shutdown();
  }
}

/** An S3 error document as S3 sends it. */
export function s3Error(status: number, code: string, headers: HeadersInit = {}): Response {
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code>` +
    `<Message>canned</Message><RequestId>r1</RequestId></Error>`;
  return new Response(body, {
    status,
    headers: { "content-type": "application/xml", ...headers },
  });
}

/** A TCP server that accepts connections and never answers. */
export async function withSilentServer(fn: (endpoint: string) => Promise<void>): Promise<void> {
  const listener = Deno.listen({ hostname: randomS3Ip(), port: 0 });
  const conns: Deno.Conn[] = [];
  const accepting = (async () => {
    try {
      for await (const c of listener) conns.push(c);
    } catch {
      // listener closed
    }
  })();
  try {
    await fn(`http://${listener.addr.hostname}:${listener.addr.port}`);
  } finally {
    listener.close();
    await accepting;
    for (const c of conns) {
      try {
        c.close();
      } catch {
        // closed by the peer already
      }
    }
  }
}
