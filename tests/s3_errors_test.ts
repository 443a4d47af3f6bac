/**
 * S3 failures become RegistryErrors with one-line messages and reasons. Through the real
 * SDK: an endpoint where nothing listens, one that accepts and never answers, and a small
 * loopback server answering with canned S3 error documents (403 AccessDenied, 503 SlowDown:
 * moto cannot be made to deny or throttle). The mapping itself is also table-tested on
 * constructed SDK-like errors (DNS failure, missing credentials: not producible offline).
 */
import assert from "node:assert/strict";
import { RegistryError } from "../src/errors.ts";
import { S3Registry } from "../src/registry/s3.ts";
import { isConditionFailure, toRegistryError } from "../src/registry/s3_errors.ts";
import { s3Error, withCannedS3, withSilentServer } from "./harness/canned_s3.ts";
import { freePort, randomS3Ip, S3_TEST_ENV } from "./harness/s3.ts";

for (const [k, v] of Object.entries(S3_TEST_ENV)) Deno.env.set(k, v);

const ctx = { op: "list", bucket: "b-1", key: "p/servers/", endpoint: "http://127.1.2.3:9" };

Deno.test("toRegistryError: reasons for SDK-like errors", () => {
  const cases: [string, Record<string, unknown>, string][] = [
    [
      "NoSuchBucket",
      { name: "NoSuchBucket", $metadata: { httpStatusCode: 404 } },
      "no-such-bucket",
    ],
    ["AccessDenied", { name: "AccessDenied", $metadata: { httpStatusCode: 403 } }, "access-denied"],
    ["bare 403", { name: "Unknown", $metadata: { httpStatusCode: 403 } }, "access-denied"],
    ["InvalidAccessKeyId", { Code: "InvalidAccessKeyId" }, "access-denied"],
    ["SignatureDoesNotMatch", { name: "SignatureDoesNotMatch" }, "access-denied"],
    ["ExpiredToken", { name: "ExpiredToken" }, "access-denied"],
    [
      "SlowDown",
      { name: "SlowDown", $metadata: { httpStatusCode: 503, attempts: 3 } },
      "throttled",
    ],
    ["bare 503", { name: "Unknown", $metadata: { httpStatusCode: 503 } }, "throttled"],
    ["429", { name: "TooManyRequests", $metadata: { httpStatusCode: 429 } }, "throttled"],
    ["ECONNREFUSED", { name: "Error", code: "ECONNREFUSED" }, "unreachable"],
    ["ENOTFOUND (DNS)", { name: "Error", code: "ENOTFOUND" }, "unreachable"],
    ["EAI_AGAIN (DNS)", { name: "Error", code: "EAI_AGAIN" }, "unreachable"],
    ["ETIMEDOUT", { name: "Error", code: "ETIMEDOUT" }, "unreachable"],
    ["TimeoutError", { name: "TimeoutError" }, "unreachable"],
    ["wrapped cause", { name: "Error", cause: { code: "ECONNRESET" } }, "unreachable"],
    ["no credentials", { name: "CredentialsProviderError" }, "no-credentials"],
    ["500", { name: "InternalError", $metadata: { httpStatusCode: 500 } }, "s3-error"],
  ];
  for (const [what, shape, reason] of cases) {
    const err = toRegistryError(Object.assign(new Error("sdk says\nsecond line"), shape), ctx);
    assert.ok(err instanceof RegistryError, what);
    assert.equal(err.reason, reason, what);
    assert.doesNotMatch(err.message, /\n/, `${what}: one line`);
    assert.match(err.message, /s3:\/\/b-1\/p\/servers\//, `${what}: names the target`);
  }
  const throttled = toRegistryError(
    Object.assign(new Error("x"), { name: "SlowDown", $metadata: { attempts: 3 } }),
    ctx,
  );
  assert.match(throttled.message, /throttled list .* after 3 attempts/);
  const timedOut = toRegistryError(new Error("aborted"), {
    ...ctx,
    timedOut: true,
    timeoutMs: 500,
  });
  assert.equal(timedOut.reason, "unreachable");
  assert.match(timedOut.message, /timed out after 0.5 s/);
});

Deno.test("isConditionFailure: 412 and 409 ConditionalRequestConflict mean 'exists'", () => {
  assert.ok(isConditionFailure({ name: "PreconditionFailed", $metadata: { httpStatusCode: 412 } }));
  assert.ok(isConditionFailure({ $metadata: { httpStatusCode: 412 } }));
  assert.ok(
    isConditionFailure({ name: "ConditionalRequestConflict", $metadata: { httpStatusCode: 409 } }),
  );
  assert.ok(!isConditionFailure({ name: "OperationAborted", $metadata: { httpStatusCode: 409 } }));
  assert.ok(!isConditionFailure({ name: "AccessDenied", $metadata: { httpStatusCode: 403 } }));
  assert.ok(!isConditionFailure(new Error("ECONNRESET")));
});

// "Quickly" is shown by what ended the call, not by a clock: a refused connection, never one of
// the deadlines (they are long here, so a call that waited for one would say "timed out").
Deno.test("an endpoint where nothing listens → unreachable, refused (no deadline waited for)", async () => {
  const host = randomS3Ip();
  const endpoint = `http://${host}:${freePort(host)}`;
  const registry = new S3Registry({
    bucket: "b-1",
    prefix: "p",
    endpoint,
    requestTimeoutMs: 120_000,
    operationTimeoutMs: 120_000,
  });
  try {
    await assert.rejects(registry.list("servers/"), (err: unknown) => {
      assert.ok(err instanceof RegistryError, String(err));
      assert.equal(err.reason, "unreachable");
      assert.match(err.message, new RegExp(`endpoint ${endpoint} is unreachable`));
      assert.doesNotMatch(
        err.message,
        /timed out|TimeoutError|ETIMEDOUT/,
        "refused, not a deadline",
      );
      return true;
    });
  } finally {
    registry.close();
  }
});

// The server never answers, so the call can only end by the deadline under test; which one
// ended it is read from the error (the other deadline is long: 120 s), not from a clock.
Deno.test("an endpoint that accepts and never answers → unreachable by the deadline given", async () => {
  await withSilentServer(async (endpoint) => {
    const cases: [Record<string, number>, RegExp][] = [
      [
        { requestTimeoutMs: 300, operationTimeoutMs: 120_000 },
        /is unreachable .*: (ETIMEDOUT|TimeoutError)$/,
      ],
      [{ requestTimeoutMs: 120_000, operationTimeoutMs: 500 }, /timed out after 0\.5 s/],
    ];
    for (const [opts, expected] of cases) {
      const registry = new S3Registry({
        bucket: "b-1",
        prefix: "p",
        endpoint,
        maxAttempts: 1,
        ...opts,
      });
      try {
        await assert.rejects(registry.get("servers/a", 10), (err: unknown) => {
          assert.ok(err instanceof RegistryError, String(err));
          assert.equal(err.reason, "unreachable", err.message);
          assert.match(err.message, expected, JSON.stringify(opts));
          return true;
        });
      } finally {
        registry.close();
      }
    }
  });
});

Deno.test("canned S3 errors through the real SDK: access denied, throttled (retried)", async () => {
  const requests: string[] = [];
  let answer = () => s3Error(403, "AccessDenied");
  await withCannedS3((req) => {
    requests.push(`${req.method} ${new URL(req.url).pathname}`);
    return answer();
  }, async (endpoint) => {
    const registry = new S3Registry({ bucket: "b-1", prefix: "p", endpoint, maxAttempts: 3 });
    try {
      await assert.rejects(registry.put("servers/a", new Uint8Array([1])), (err: unknown) => {
        assert.ok(err instanceof RegistryError, String(err));
        assert.equal(err.reason, "access-denied");
        assert.match(err.message, /denied put of s3:\/\/b-1\/p\/servers\/a: AccessDenied/);
        return true;
      });
      assert.equal(requests.length, 1, "access denied is not retried");

      requests.length = 0;
      answer = () => s3Error(503, "SlowDown");
      await assert.rejects(registry.list("servers/"), (err: unknown) => {
        assert.ok(err instanceof RegistryError, String(err));
        assert.equal(err.reason, "throttled");
        assert.match(err.message, /throttled list .*SlowDown after 3 attempts/);
        return true;
      });
      assert.equal(requests.length, 3, "throttling is retried up to maxAttempts");
    } finally {
      registry.close();
    }
  });
});

/**
 * A conditional create whose first attempt reached the store but whose answer was lost (here:
 * stored, then answered 503 SlowDown, so the SDK retries and the retry meets 412): the creator
 * must not conclude it lost. Seen in the boot storm at load (a place claimed, its creator
 * running as a client). A 412 on the first attempt, or a retry that finds other bytes, is
 * still "exists".
 */
Deno.test("createIfAbsent: a retried create that finds its own bytes was created; others' bytes: exists", async () => {
  const stored = new Map<string, Uint8Array>();
  /** What the next PUT does before answering: store then 503, or 503 without storing. */
  let nextPut: "normal" | "store-then-503" | "503" = "store-then-503";
  await withCannedS3(async (req) => {
    const path = new URL(req.url).pathname;
    if (req.method === "PUT") {
      const mode = nextPut;
      nextPut = "normal";
      if (mode === "503") return s3Error(503, "SlowDown");
      if (req.headers.get("if-none-match") === "*" && stored.has(path)) {
        return s3Error(412, "PreconditionFailed");
      }
      stored.set(path, new Uint8Array(await req.arrayBuffer()));
      if (mode === "store-then-503") return s3Error(503, "SlowDown");
      return new Response(null, { status: 200, headers: { etag: '"e"' } });
    }
    if (req.method === "GET") {
      const body = stored.get(path);
      return body ? new Response(body.slice().buffer, { status: 200 }) : s3Error(404, "NoSuchKey");
    }
    return s3Error(400, "Unexpected");
  }, async (endpoint) => {
    const registry = new S3Registry({ bucket: "b-1", prefix: "p", endpoint, maxAttempts: 3 });
    const enc = (s: string) => new TextEncoder().encode(s);
    try {
      // our write landed, its answer was lost, the retry met our own object: created
      assert.equal(await registry.createIfAbsent("slots/0/0000000001", enc("node-a")), "created");
      assert.equal(stored.size, 1);
      // someone else's create of the same key: 412 at the first attempt
      assert.equal(await registry.createIfAbsent("slots/0/0000000001", enc("node-b")), "exists");
      // a retried create whose first attempt did not land, meeting another node's object
      stored.set("/b-1/p/slots/1/0000000001", enc("node-c"));
      nextPut = "503";
      assert.equal(await registry.createIfAbsent("slots/1/0000000001", enc("node-d")), "exists");
      assert.equal(new TextDecoder().decode(stored.get("/b-1/p/slots/1/0000000001")), "node-c");
    } finally {
      registry.close();
    }
  });
});
