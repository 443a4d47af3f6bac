/**
 * The test tiers are told apart by where a file lives: a test that starts consul agents or the
 * S3 server (moto) is in tests/real/, every other test (pure logic, fakes, the CLI or small
 * loopback servers of its own) is in tests/. Checked here from the imports, so a test filed in
 * the wrong place fails (`starters` finds what a file uses to start them).
 */
import assert from "node:assert/strict";
import { REPO } from "./harness/proc.ts";

/** What starts consul or moto, by the module a test imports it from. */
const STARTERS: [RegExp, RegExp][] = [
  [/harness\/consul\.ts"/, /\b(withCluster|withAgent|startAgent|startCluster)\b/],
  [/harness\/s3\.ts"/, /\b(startS3Server|withS3Server)\b/],
  [/harness\/nodes\.ts"/, /\bwithNodes\b/],
  [/harness\/(soak|partition_suite)\.ts"/, /./],
  [/registry\/contract\.ts"/, /./],
  [/harness\/consul\.ts"/, /\bconsulBin\b/],
];

/** The starters a test file uses (the names imported from a starting module, or the demo). */
export function starters(text: string): string[] {
  const found: string[] = [];
  const imports = text.match(/import\s*(?:type\s*)?\{[^}]*\}\s*from\s*"[^"]+";?/g) ?? [];
  for (const imp of imports) {
    for (const [from, names] of STARTERS) {
      if (from.test(imp) && !/^import\s+type\b/.test(imp) && names.test(imp)) found.push(imp);
    }
  }
  if (/scripts\/demo\.ts/.test(text)) found.push("scripts/demo.ts");
  return found;
}

/** The test files of `dir` (this one, which names the starters, aside). */
function testFiles(dir: string): string[] {
  return [...Deno.readDirSync(`${REPO}/${dir}`)]
    .filter((e) => e.isFile && e.name.endsWith("_test.ts") && e.name !== "test_tiers_test.ts")
    .map((e) => `${dir}/${e.name}`)
    .sort();
}

Deno.test("starters: names imported from the harnesses that start consul or moto", () => {
  assert.equal(starters(`import { withCluster } from "./harness/consul.ts";`).length, 1);
  assert.equal(starters(`import { randomLoopbackIp } from "./harness/consul.ts";`).length, 0);
  assert.equal(starters(`import { freePort } from "../harness/s3.ts";`).length, 0);
  assert.equal(starters(`import {\n  withS3Server,\n} from "../harness/s3.ts";`).length, 1);
  assert.equal(starters(`import type { Nodes } from "./harness/nodes.ts";`).length, 0);
  assert.equal(starters("const demo = `${REPO}/scripts/demo.ts`;").length, 1);
});

Deno.test("tests in tests/ start neither consul nor the S3 server", () => {
  const wrong = testFiles("tests").filter((f) =>
    starters(Deno.readTextFileSync(`${REPO}/${f}`)).length
  );
  assert.deepEqual(wrong, [], "these start consul or moto: move them to tests/real/");
});

Deno.test("tests in tests/real/ start consul or the S3 server", () => {
  const wrong = testFiles("tests/real").filter((f) =>
    starters(Deno.readTextFileSync(`${REPO}/${f}`)).length === 0
  );
  assert.deepEqual(wrong, [], "these start neither: move them to tests/");
});
