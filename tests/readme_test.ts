/** README.md stays true: every flag in --help is documented, and the other way round. */
import assert from "node:assert/strict";
import { COMMANDS } from "../src/cli/flag_types.ts";
import { FLAGS } from "../src/cli/flags.ts";
import { helpText } from "../src/cli/help.ts";
import { REPO } from "./harness/proc.ts";
import { FINDING_IDS } from "../src/doctor/facts.ts";
import type { Command } from "../src/cli/flag_types.ts";
import { DOCTOR_EXIT } from "../src/doctor/diagnose.ts";
import {
  ConsulError,
  ConsulStartError,
  EXIT,
  exitCodeOf,
  LocalStateError,
  RegistryError,
  UsageError,
} from "../src/errors.ts";

const readme = await Deno.readTextFile(`${REPO}/README.md`);

function flagsIn(text: string): Set<string> {
  return new Set([...text.matchAll(/(?<![\w-])--([a-z][a-z0-9-]+)/g)].map((m) => m[1]));
}

Deno.test("every flag shown by --help (tool and each command) is in the README's flag table", () => {
  const section = readme.split("<!-- flags:start -->")[1]?.split("<!-- flags:end -->")[0];
  assert.ok(section, "README has the flags section markers");
  const documented = flagsIn(section);
  const shown = new Set<string>();
  for (const c of [undefined, ...Object.keys(COMMANDS) as Command[]]) {
    for (const f of flagsIn(helpText(c))) shown.add(f);
  }
  assert.ok(shown.size >= FLAGS.length - 1, `help shows the flags (${shown.size})`);
  for (const f of shown) assert.ok(documented.has(f), `--${f} is in --help but not in README.md`);
  const known = new Set(FLAGS.flatMap((f) => [f.name, ...(f.aliases ?? [])]));
  for (const f of documented) {
    assert.ok(known.has(f), `README.md documents --${f}, which auto-consul does not have`);
  }
  for (const f of FLAGS) {
    assert.ok(shown.has(f.name), `--${f.name} is missing from every --help`);
    for (const e of f.env) {
      assert.ok(section.includes(e), `${e} (for --${f.name}) is in the README`);
    }
  }
});

Deno.test("the README's exit-code table lists exactly the exit codes in the code", () => {
  const section = readme.split("### Exit codes")[1]?.split("\n### ")[0];
  assert.ok(section, "README has an Exit codes section");
  const documented = new Set(
    [...section.matchAll(/^\| (\d+) +\|/gm)].map((m) => Number(m[1])),
  );
  const inCode = new Set<number>([
    ...Object.values(EXIT),
    ...Object.values(DOCTOR_EXIT),
    ...[
      new UsageError(""),
      new RegistryError("", ""),
      new ConsulError("", 0, ""),
      new LocalStateError(""),
      new ConsulStartError(""),
    ].map((e) => e.exitCode),
  ]);
  assert.deepEqual([...documented].sort((a, b) => a - b), [...inCode].sort((a, b) => a - b));
  for (const e of [new TypeError("x"), new Error("x")]) {
    assert.ok(documented.has(exitCodeOf(e)), `exit code of a ${e.name} is documented`);
  }
});

Deno.test("every command is in the README", () => {
  for (const c of Object.keys(COMMANDS)) assert.match(readme, new RegExp("`" + c + "`"), c);
});

Deno.test("every doctor finding has its section under Outages › Doctor findings", () => {
  const section = readme.split("### Doctor findings")[1]?.split(/\n## /)[0];
  assert.ok(section, "README has a 'Doctor findings' subsection");
  const headings = [...section.matchAll(/^#### `([a-z-]+)`$/gm)].map((m) => m[1]);
  assert.deepEqual([...headings].sort(), [...FINDING_IDS].sort());
});

Deno.test("the exit codes in --help are in the README's exit code table", () => {
  const table = readme.split("### Exit codes")[1]?.split("\n### ")[0] ?? "";
  const codes = [...helpText().matchAll(/^ {2}(\d+) {2}/gm)].map((m) => m[1]);
  assert.ok(codes.includes("5") && codes.includes("6"), "help lists doctor's exit codes");
  for (const c of codes) assert.match(table, new RegExp(`^\\| ${c} +\\|`, "m"), `exit code ${c}`);
});

Deno.test("the README's two top commands and .ci/run agree", async () => {
  assert.match(readme, /^bash scripts\/demo\.sh/m);
  assert.match(readme, /^bash scripts\/test\.sh/m);
  const ci = await Deno.readTextFile(`${REPO}/.ci/run`);
  assert.match(ci, /^bash scripts\/test\.sh$/m, ".ci/run calls the README's test command");
});
