/** README.md stays true: every flag in --help is documented, and the other way round. */
import assert from "node:assert/strict";
import { COMMANDS, FLAGS } from "../src/cli/flags.ts";
import { helpText } from "../src/cli/help.ts";
import { REPO } from "./harness/cli.ts";
import type { Command } from "../src/cli/flags.ts";

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

Deno.test("every command is in the README", () => {
  for (const c of Object.keys(COMMANDS)) assert.match(readme, new RegExp("`" + c + "`"), c);
});

Deno.test("the README's two top commands and .ci/run agree", async () => {
  assert.match(readme, /^bash scripts\/demo\.sh/m);
  assert.match(readme, /^bash scripts\/test\.sh/m);
  const ci = await Deno.readTextFile(`${REPO}/.ci/run`);
  assert.match(ci, /^bash scripts\/test\.sh$/m, ".ci/run calls the README's test command");
});

Deno.test({
  name: "the systemd unit passes systemd-analyze verify",
  ignore: !(() => {
    try {
      return Deno.statSync("/usr/bin/systemd-analyze").isFile;
    } catch {
      return false;
    }
  })(),
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      // Only the binary's path changes: /usr/local/bin/auto-consul is not installed here.
      const exe = `${dir}/auto-consul`;
      await Deno.writeTextFile(exe, "#!/bin/sh\nexit 0\n", { mode: 0o755 });
      const unit = (await Deno.readTextFile(`${REPO}/scripts/systemd/auto-consul.service`))
        .replaceAll("/usr/local/bin/auto-consul", exe);
      await Deno.writeTextFile(`${dir}/auto-consul.service`, unit);
      const out = await new Deno.Command("systemd-analyze", {
        args: ["verify", `${dir}/auto-consul.service`],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const err = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, err);
      assert.doesNotMatch(err, /auto-consul\.service/, err);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
