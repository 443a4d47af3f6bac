/** Partitions on S3, the registry cut from one server included: see tests/harness/partition_suite.ts. */
import { startForwarder } from "../harness/partition.ts";
import { partitionSuite } from "../harness/partition_suite.ts";
import { randomS3Ip, type S3Server, withS3Server } from "../harness/s3.ts";

Deno.test("partitions on S3, registry cut from one server included: invariants held, healthy after each heal", async () => {
  await withS3Server(async (s3: S3Server) => {
    const forwarders = Array.from({ length: 5 }, () => {
      const ip = randomS3Ip();
      const f = startForwarder(ip, { hostname: s3.host, port: s3.port });
      return { ip, ...f };
    });
    try {
      await partitionSuite(
        "s3",
        `s3://${s3.bucket}/partition`,
        (i) => ({
          ...s3.env,
          AWS_ENDPOINT_URL_S3: `http://${forwarders[i].ip}:${forwarders[i].port}`,
        }),
        { ...s3.env, AWS_ENDPOINT_URL_S3: s3.endpoint },
        forwarders,
      );
    } finally {
      forwarders.forEach((f) => f.close());
    }
  });
});
