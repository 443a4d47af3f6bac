/**
 * What tests, benchmarks and the demo share about the processes they start: the repository
 * root and the consul flags every test or benchmark agent gets.
 */

/** The repository root (no trailing slash). */
export const REPO = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

/** Consul flags every test and benchmark agent gets (after `--` of run): no DNS or gRPC port, fast raft. */
export const TEST_CONSUL_ARGS: readonly string[] = [
  "-dns-port=-1",
  "-grpc-port=-1",
  "-hcl",
  "performance { raft_multiplier = 1 }",
  "-hcl",
  "disable_update_check = true",
];
