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

Deno.test("an endpoint where nothing listens → unreachable, quickly", async () => {
  const host = randomS3Ip();
  const endpoint = `http://${host}:${freePort(host)}`;
  const registry = new S3Registry({ bucket: "b-1", prefix: "p", endpoint });
  const started = Date.now();
  try {
    await assert.rejects(registry.list("servers/"), (err: unknown) => {
      assert.ok(err instanceof RegistryError, String(err));
      assert.equal(err.reason, "unreachable");
      assert.match(err.message, new RegExp(`endpoint ${endpoint} is unreachable`));
      return true;
    });
  } finally {
    registry.close();
  }
  assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`);
});

Deno.test("an endpoint that accepts and never answers → unreachable within the deadline", async () => {
  await withSilentServer(async (endpoint) => {
    for (const opts of [{ requestTimeoutMs: 300 }, { operationTimeoutMs: 500 }]) {
      const registry = new S3Registry({
        bucket: "b-1",
        prefix: "p",
        endpoint,
        maxAttempts: 1,
        ...opts,
      });
      const started = Date.now();
      try {
        await assert.rejects(registry.get("servers/a", 10), (err: unknown) => {
          assert.ok(err instanceof RegistryError, String(err));
          assert.equal(err.reason, "unreachable", err.message);
          return true;
        });
      } finally {
        registry.close();
      }
      assert.ok(Date.now() - started < 5_000, `${JSON.stringify(opts)}: too slow`);
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
      const started = Date.now();
      await assert.rejects(registry.list("servers/"), (err: unknown) => {
        assert.ok(err instanceof RegistryError, String(err));
        assert.equal(err.reason, "throttled");
        assert.match(err.message, /throttled list .*SlowDown after 3 attempts/);
        return true;
      });
      assert.equal(requests.length, 3, "throttling is retried up to maxAttempts");
      assert.ok(Date.now() - started < 10_000);
    } finally {
      registry.close();
    }
  });
});
