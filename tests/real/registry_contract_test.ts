/**
 * One Registry contract, run against both backends: the folder (in a temp dir) and S3
 * (moto, through the real AWS SDK; one moto server for the whole file). On top: the
 * heartbeats module, the gem's format (acceptance) and generated garbage (acceptance).
 */
import assert from "node:assert/strict";
import { RegistryError } from "../../src/errors.ts";
import { openRegistry } from "../../src/registry/open.ts";
import { probeConditionalWrites } from "../../src/registry/probe.ts";
import { S3Registry } from "../../src/registry/s3.ts";
import { withS3Server } from "../harness/s3.ts";
import { contractSuite, withFixture } from "../registry/contract.ts";
import { type Backend, fileBackend, s3Backend } from "../registry/fixtures.ts";
import { garbageSuite } from "../registry/garbage_suite.ts";
import { gemSuite } from "../registry/gem_suite.ts";
import { heartbeatsSuite } from "../registry/heartbeats_suite.ts";
import { slotsFuzzSuite } from "../registry/slots_fuzz_suite.ts";

async function allSuites(t: Deno.TestContext, backend: Backend): Promise<void> {
  await contractSuite(t, backend);
  await heartbeatsSuite(t, backend);
  await gemSuite(t, backend);
  await garbageSuite(t, backend);
  // S3's LastModified cannot be set back: each S3 round waits out the expiry once.
  await slotsFuzzSuite(t, backend, backend.name === "file" ? 40 : 3);
}

Deno.test("registry contract: file:// backend", async (t) => {
  const base = await Deno.makeTempDir({ prefix: "auto-consul-registry-" });
  try {
    await allSuites(t, fileBackend(base));

    await t.step(
      "probe: file://...?ignore-conditions=1 is reported as not honoured",
      () =>
        withFixture(fileBackend(base), async ({ registry }) => {
          assert.deepEqual(await probeConditionalWrites(registry), { honoured: false });
          assert.deepEqual((await registry.list("probe/")).objects, []);
        }, { ignoreConditions: true }),
    );

    await t.step("probe through openRegistry and the URL option", async () => {
      const honoured = await openRegistry(`file://${base}/by-url`);
      const ignoring = await openRegistry(`file://${base}/by-url?ignore-conditions=1`);
      assert.deepEqual(await probeConditionalWrites(honoured), { honoured: true });
      assert.deepEqual(await probeConditionalWrites(ignoring), { honoured: false });
      assert.equal(ignoring.url, `file://${base}/by-url?ignore-conditions=1`);
    });
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("registry contract: s3:// backend (moto, real AWS SDK)", async (t) => {
  await withS3Server(async (s3) => {
    await allSuites(t, s3Backend(s3));

    await t.step("openRegistry(s3://...) with an endpoint reaches the bucket", async () => {
      const registry = await openRegistry(`s3://${s3.bucket}/via-open/`, {
        endpoint: s3.endpoint,
      });
      try {
        assert.equal(registry.url, `s3://${s3.bucket}/via-open`);
        await registry.put("servers/x", new TextEncoder().encode("10.0.0.1"));
        assert.deepEqual((await registry.list("servers/")).objects.map((o) => o.key), [
          "servers/x",
        ]);
      } finally {
        registry.close();
      }
    });

    await t.step(
      "listing pages through continuation tokens, and stops past the page bound",
      async () => {
        const opts = { bucket: s3.bucket, prefix: "paged", endpoint: s3.endpoint, listPageSize: 7 };
        const registry = new S3Registry(opts);
        const bounded = new S3Registry({ ...opts, maxListPages: 2 });
        try {
          const keys = Array.from(
            { length: 20 },
            (_, i) => `servers/k${String(i).padStart(2, "0")}`,
          );
          await Promise.all(keys.map((k) => registry.put(k, new TextEncoder().encode(k))));
          assert.deepEqual((await registry.list("servers/")).objects.map((o) => o.key), keys);
          await assert.rejects(bounded.list("servers/"), (err: unknown) => {
            assert.ok(err instanceof RegistryError);
            assert.equal(err.reason, "too-many-objects");
            assert.match(err.message, /more than 2 pages/);
            return true;
          });
        } finally {
          registry.close();
          bounded.close();
        }
      },
    );

    await t.step("a bucket that does not exist → RegistryError no-such-bucket", async () => {
      const registry = new S3Registry({
        bucket: "no-such-bucket-here",
        prefix: "p",
        endpoint: s3.endpoint,
      });
      try {
        for (const op of [() => registry.list("servers/"), () => registry.get("servers/a", 10)]) {
          await assert.rejects(op(), (err: unknown) => {
            assert.ok(err instanceof RegistryError, String(err));
            assert.equal(err.reason, "no-such-bucket");
            assert.match(err.message, /bucket "no-such-bucket-here" does not exist/);
            assert.doesNotMatch(err.message, /\n/);
            return true;
          });
        }
      } finally {
        registry.close();
      }
    });
  });
});
