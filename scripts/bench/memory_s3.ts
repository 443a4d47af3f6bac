/**
 * An in-memory S3 for the boot storm (issue 17): the five calls the registry makes, path-style
 * (`/<bucket>/<key>`), answered as S3 answers them — PutObject (with `If-None-Match: *`: 412
 * PreconditionFailed when the key exists), GetObject (with `Range: bytes=0-N`: 206 and
 * Content-Range; 404 NoSuchKey; 416 on an empty object), DeleteObject (204), ListObjectsV2
 * (prefix, max-keys, continuation-token, encoding-type=url). One map, no persistence, any
 * bucket. moto (one python process) answers a few dozen requests a second on 2 shared cores,
 * so a thousand-node storm against it measures moto; against this store it measures the nodes
 * and their protocol. Used behind the latency proxy (`s3_counter.ts`, target "memory").
 */

interface Obj {
  body: Uint8Array;
  lastModified: Date;
  etag: string;
}

const xmlEscape = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function error(status: number, code: string, message: string): Response {
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code>` +
    `<Message>${xmlEscape(message)}</Message><RequestId>${crypto.randomUUID()}</RequestId></Error>`;
  return new Response(body, { status, headers: { "content-type": "application/xml" } });
}

/** Epoch-second precision, as S3's LastModified. */
const now = () => new Date(Math.floor(Date.now() / 1000) * 1000);

export function memoryS3(): (req: Request) => Promise<Response> {
  const objects = new Map<string, Obj>();
  let etags = 0;
  return async (req) => {
    const url = new URL(req.url);
    const slash = url.pathname.indexOf("/", 1);
    const bucket = decodeURIComponent(
      slash < 0 ? url.pathname.slice(1) : url.pathname.slice(1, slash),
    );
    const key = slash < 0 ? "" : decodeURIComponent(url.pathname.slice(slash + 1));
    const id = `${bucket}/${key}`;
    if (req.method === "GET" && key === "" && url.searchParams.get("list-type") === "2") {
      return list(objects, bucket, url.searchParams);
    }
    if (key === "") return error(400, "InvalidRequest", "expected a key");
    switch (req.method) {
      case "PUT": {
        const body = new Uint8Array(await req.arrayBuffer());
        if (req.headers.get("if-none-match") === "*" && objects.has(id)) {
          return error(412, "PreconditionFailed", "At least one of the pre-conditions failed");
        }
        const etag = `"${(++etags).toString(16).padStart(32, "0")}"`;
        objects.set(id, { body, lastModified: now(), etag });
        return new Response(null, { status: 200, headers: { etag } });
      }
      case "GET": {
        const o = objects.get(id);
        if (!o) return error(404, "NoSuchKey", "The specified key does not exist.");
        const headers = {
          etag: o.etag,
          "last-modified": o.lastModified.toUTCString(),
          "content-type": "application/octet-stream",
        };
        const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.get("range") ?? "");
        if (!range) return new Response(o.body.slice(), { status: 200, headers });
        const from = Number(range[1]);
        if (from >= o.body.length) {
          return error(416, "InvalidRange", "The requested range is not satisfiable");
        }
        const to = Math.min(Number(range[2]), o.body.length - 1);
        return new Response(o.body.slice(from, to + 1), {
          status: 206,
          headers: { ...headers, "content-range": `bytes ${from}-${to}/${o.body.length}` },
        });
      }
      case "DELETE":
        objects.delete(id);
        return new Response(null, { status: 204 });
      case "HEAD": {
        const o = objects.get(id);
        return new Response(null, { status: o ? 200 : 404 });
      }
      default:
        return error(405, "MethodNotAllowed", `${req.method} is not supported here`);
    }
  };
}

function list(objects: Map<string, Obj>, bucket: string, q: URLSearchParams): Response {
  const prefix = q.get("prefix") ?? "";
  const max = Math.min(1000, Number(q.get("max-keys") ?? 1000));
  const after = q.get("continuation-token") ?? "";
  const url = q.get("encoding-type") === "url";
  const keys = [...objects.keys()]
    .filter((k) => k.startsWith(`${bucket}/`))
    .map((k) => k.slice(bucket.length + 1))
    .filter((k) => k.startsWith(prefix) && k > after)
    .sort();
  const page = keys.slice(0, max);
  const truncated = keys.length > page.length;
  const enc = (k: string) => xmlEscape(url ? encodeURIComponent(k).replace(/%2F/g, "/") : k);
  const contents = page.map((k) => {
    const o = objects.get(`${bucket}/${k}`)!;
    return `<Contents><Key>${enc(k)}</Key><LastModified>${o.lastModified.toISOString()}` +
      `</LastModified><ETag>${xmlEscape(o.etag)}</ETag><Size>${o.body.length}</Size>` +
      `<StorageClass>STANDARD</StorageClass></Contents>`;
  }).join("");
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>${
      xmlEscape(bucket)
    }</Name><Prefix>${enc(prefix)}</Prefix><KeyCount>${page.length}</KeyCount><MaxKeys>${max}` +
    `</MaxKeys>${url ? "<EncodingType>url</EncodingType>" : ""}<IsTruncated>${truncated}` +
    `</IsTruncated>${contents}${
      truncated
        ? `<NextContinuationToken>${xmlEscape(page[page.length - 1])}</NextContinuationToken>`
        : ""
    }</ListBucketResult>`;
  return new Response(body, { status: 200, headers: { "content-type": "application/xml" } });
}
