/**
 * Fast start (issue 6): `--help`, `--version` and commands on a folder registry never load
 * the AWS SDK; a command on an s3:// registry does. Deno's debug log names every npm package
 * folder it resolves, so the CLI runs from source with `--log-level=debug` and the output is
 * searched for the SDK's package. No S3 server is needed: the s3:// run points at a closed
 * loopback port, which is enough for the SDK to be loaded (and for the command to fail, 3).
 */
import assert from "node:assert/strict";
import { freePort } from "./harness/s3.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const SDK_MARK = "Resolved package folder of @aws-sdk/client-s3";

/** Runs main.ts from source with deno's debug log; returns exit code and all output. */
async function runDebug(args: string[]): Promise<{ code: number; output: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--log-level=debug", MAIN, ...args],
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: Deno.env.get("HOME") ?? "/tmp",
      ...(Deno.env.get("DENO_DIR") ? { DENO_DIR: Deno.env.get("DENO_DIR")! } : {}),
      NO_COLOR: "1",
      // dummy credentials: the SDK's chain stops at the environment (no instance metadata)
      AWS_ACCESS_KEY_ID: "testing",
      AWS_SECRET_ACCESS_KEY: "testing",
      AWS_EC2_METADATA_DISABLED: "true",
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  try {
    const out = await child.output();
    const dec = new TextDecoder();
    return { code: out.code, output: dec.decode(out.stdout) + dec.decode(out.stderr) };
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("--help, --version and folder-registry commands do not load the AWS SDK; s3:// does", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "auto-consul-lazy-sdk-" });
  const closed = `127.0.0.1:${freePort("127.0.0.1")}`; // nothing listens there
  try {
    const without: [string, string[]][] = [
      ["--help", ["--help"]],
      ["--version", ["--version"]],
      ["set_mode on a folder registry", [
        ...["-r", `file://${dir}/registry`, "-d", `${dir}/data`, "-n", "lazy-1", "set_mode"],
      ]],
      ["status on a folder registry", [
        ...["-r", `file://${dir}/registry`, "--http-addr", closed, "status"],
      ]],
      ["heartbeat on a folder registry (consul not running: exit 1)", [
        ...["-r", `file://${dir}/registry`, "--http-addr", closed, "heartbeat"],
      ]],
    ];
    for (const [name, args] of without) {
      await t.step(name, async () => {
        const r = await runDebug(args);
        assert.match(r.output, /^DEBUG RS /m, "deno's debug log is on");
        assert.ok(!r.output.includes(SDK_MARK), `${name} loaded the AWS SDK`);
      });
    }
    await t.step("status on an s3:// registry loads it", async () => {
      const r = await runDebug([
        ...["-r", "s3://lazy-sdk-bucket/p", "--s3-endpoint", `http://${closed}`],
        ...["--http-addr", closed, "status"],
      ]);
      assert.ok(
        r.output.includes(SDK_MARK),
        `the AWS SDK was not loaded:\n${r.output.slice(-2000)}`,
      );
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
