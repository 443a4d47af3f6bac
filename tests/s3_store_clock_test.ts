/**
 * Heartbeat ages are measured on the store's clock: an S3 listing carries the HTTP `Date`
 * of the answer as `storeNow`, whatever the local clock says (a canned ListObjectsV2 answer
 * from a skewed store, through the real SDK).
 */
import assert from "node:assert/strict";
import { S3Registry } from "../src/registry/s3.ts";
import { withCannedS3 } from "./harness/canned_s3.ts";
import { S3_TEST_ENV } from "./harness/s3.ts";

for (const [k, v] of Object.entries(S3_TEST_ENV)) Deno.env.set(k, v);

const LISTING = `<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>b-1</Name><Prefix>p/servers/</Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys>
  <EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>
  <Contents><Key>p/servers/20140516092731-server1</Key>
    <LastModified>2014-05-16T09:27:31.000Z</LastModified><Size>14</Size></Contents>
  <Contents><Key>p/servers/20140516092731-a%20b%2Bc</Key>
    <LastModified>2014-05-16T09:27:00.000Z</LastModified><Size>1</Size></Contents>
</ListBucketResult>`;

Deno.test("S3 listing: storeNow is the answer's Date header; url-encoded keys decoded", async () => {
  const storeDate = "Fri, 16 May 2014 09:28:01 GMT";
  const queries: string[] = [];
  await withCannedS3((req) => {
    queries.push(new URL(req.url).search);
    return new Response(LISTING, {
      headers: { "content-type": "application/xml", date: storeDate },
    });
  }, async (endpoint) => {
    const registry = new S3Registry({ bucket: "b-1", prefix: "p", endpoint, maxAttempts: 1 });
    try {
      const listing = await registry.list("servers/");
      assert.equal(listing.storeNow.toISOString(), new Date(storeDate).toISOString());
      assert.deepEqual(listing.objects, [
        {
          key: "servers/20140516092731-server1",
          lastModified: new Date("2014-05-16T09:27:31Z"),
          size: 14,
        },
        {
          key: "servers/20140516092731-a b+c",
          lastModified: new Date("2014-05-16T09:27:00Z"),
          size: 1,
        },
      ]);
      assert.match(queries[0], /encoding-type=url/);
      assert.match(queries[0], /prefix=p%2Fservers%2F/);
    } finally {
      registry.close();
    }
  });
});
