/** The import-cycle checker (scripts/check_imports.ts): its parts, the script, and this repo. */
import { REPO } from "./harness/proc.ts";
import assert from "node:assert/strict";
import { findCycles, importGraph, importsOf } from "../scripts/check_imports.ts";

const SCRIPT = new URL("../scripts/check_imports.ts", import.meta.url).pathname;

Deno.test("importsOf: static, type-only, re-export, bare and dynamic imports; line and block comments and packages ignored (not a trailing comment)", () => {
  const src = [
    `import { a } from "./a.ts";`,
    `import type { B } from "../b.ts";`,
    `import {`,
    `  c,`,
    `  type D,`,
    `} from "./c.ts";`,
    `export { e } from "./e.ts";`,
    `export * from "./f.ts";`,
    `import "./side.ts";`,
    `const g = await import("./g.ts");`,
    `import assert from "node:assert/strict";`,
    `import { S3Client } from "@aws-sdk/client-s3";`,
    `// import { x } from "./commented.ts";`,
    `/** import("./doc.ts") */`,
    `const url = "http://example.com/x"; // import("./trailing.ts") is rare`,
  ].join("\n");
  assert.deepEqual(importsOf(src).sort(), [
    "../b.ts",
    "./a.ts",
    "./c.ts",
    "./e.ts",
    "./f.ts",
    "./g.ts",
    "./side.ts",
    "./trailing.ts",
  ]);
});

Deno.test("findCycles: none in a tree or a diamond; two-module, longer and self cycles named", () => {
  const g = (edges: Record<string, string[]>) => new Map(Object.entries(edges));
  assert.deepEqual(findCycles(g({ a: ["b", "c"], b: ["d"], c: ["d"], d: [] })), []);
  assert.deepEqual(findCycles(g({ a: ["b"], b: ["a"] })), [["a", "b", "a"]]);
  assert.deepEqual(findCycles(g({ m: ["x"], x: ["y"], y: ["z"], z: ["x"] })), [[
    "x",
    "y",
    "z",
    "x",
  ]]);
  assert.deepEqual(findCycles(g({ s: ["s"], t: [] })), [["s", "s"]]);
  assert.equal(findCycles(g({ a: ["b"], b: ["a"], c: ["d"], d: ["c"] })).length, 2);
});

Deno.test("check_imports.ts exits 1 naming the cycle, 0 without one", async () => {
  const root = await Deno.makeTempDir({ prefix: "check_imports_" });
  try {
    await Deno.mkdir(`${root}/src/commands`, { recursive: true });
    await Deno.writeTextFile(
      `${root}/src/commands/dispatch.ts`,
      `export const x = () => import("./run.ts");\n`,
    );
    await Deno.writeTextFile(
      `${root}/src/commands/run.ts`,
      `import type { Deps } from "./dispatch.ts";\nexport type R = Deps;\n`,
    );
    const run = () =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-read", SCRIPT, root],
        stdout: "piped",
        stderr: "piped",
      }).output();
    const bad = await run();
    assert.equal(bad.code, 1);
    assert.equal(
      new TextDecoder().decode(bad.stderr).trim(),
      "import cycle: src/commands/dispatch.ts -> src/commands/run.ts -> src/commands/dispatch.ts",
    );
    await Deno.writeTextFile(`${root}/src/commands/run.ts`, `export type R = number;\n`);
    const good = await run();
    assert.equal(good.code, 0, new TextDecoder().decode(good.stderr));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("this repository has no import cycle", async () => {
  const graph = await importGraph(REPO);
  assert.ok(graph.has("src/commands/run.ts") && graph.has("main.ts"), "the graph covers the repo");
  assert.ok(graph.get("src/commands/dispatch.ts")!.includes("src/commands/run.ts"));
  assert.deepEqual(findCycles(graph), []);
});
