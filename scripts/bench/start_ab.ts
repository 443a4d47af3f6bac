/**
 * Start time, this checkout against an earlier commit, in one run: the same commands from both
 * trees, interleaved (base, this, base, this, ...), so load drift hits both alike. Used to show
 * that a change kept out of the hot path really stays out (issue 13: the preflight, the data
 * dir lock and the registry checks must not make start-up slower). Commands: `--version`, and
 * `set_mode` on a folder registry with a fresh data dir (the start path of `run` up to its
 * mode decision: config, lock, registry, probe, claim — no consul).
 *
 *   deno run -A scripts/bench/start_ab.ts --base d4aa66e~1 [--reps 15]
 *
 * The base commit is checked out in a temporary git worktree (removed at exit).
 */
import {
  benchFlags,
  benchStart,
  fmtStats,
  REPO,
  stats,
  table,
  timeCommand,
  writeSection,
} from "./lib.ts";
import { cleanEnv } from "./fleet.ts";

const NAME = "start_ab";
const flags = benchFlags(NAME, { base: "d4aa66e~1", reps: 15 }, "start time against a base");

async function git(args: string[]): Promise<string> {
  const out = await new Deno.Command("git", { args: ["-C", REPO, ...args], stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`git ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  return new TextDecoder().decode(out.stdout).trim();
}

const { root, provenance } = await benchStart(NAME);
const baseRev = await git(["rev-parse", "--short", flags.base]);
const headRev = await git(["rev-parse", "--short", "HEAD"]);
const baseTree = `${root}/base`;
await git(["worktree", "add", "--detach", "--quiet", baseTree, baseRev]);
globalThis.addEventListener("unload", () => {
  new Deno.Command("git", { args: ["-C", REPO, "worktree", "remove", "--force", baseTree] })
    .outputSync();
});
try {
  await Deno.symlink(`${REPO}/.tools`, `${baseTree}/.tools`);
} catch { /* no .tools here: deno and consul come from PATH */ }

const env = cleanEnv({});
const trees = [
  { label: `base ${baseRev}`, dir: baseTree },
  { label: `this ${headRev}`, dir: REPO },
];
const commands: { label: string; args: (dir: string, i: number) => string[] }[] = [
  { label: "`auto-consul --version`", args: () => ["--version"] },
  {
    label: "`auto-consul set_mode`, folder registry, fresh data dir (-s 3)",
    args: (dir, i) => [
      "-r",
      `file://${root}/registry`,
      "-d",
      `${root}/data-${dir === REPO ? "this" : "base"}-${i}`,
      "-n",
      `node-${dir === REPO ? "this" : "base"}-${i}`,
      "-s",
      "3",
      "set_mode",
    ],
  },
];
await Deno.mkdir(`${root}/registry`);
const ms = new Map<string, number[]>();
const codes = new Map<string, Set<number>>();
for (let i = 0; i < flags.reps; i++) {
  for (const c of commands) {
    for (const t of trees) {
      const key = `${c.label}|${t.label}`;
      const r = await timeCommand(Deno.execPath(), [
        "run",
        "-A",
        `${t.dir}/main.ts`,
        ...c.args(t.dir, i),
      ], { env });
      (ms.get(key) ?? ms.set(key, []).get(key)!).push(r.ms / 1000);
      (codes.get(key) ?? codes.set(key, new Set()).get(key)!).add(r.code);
    }
  }
  console.error(`rep ${i + 1}/${flags.reps}`);
}
const rows = commands.map((c) => {
  const [b, h] = trees.map((t) => stats(ms.get(`${c.label}|${t.label}`)!));
  const delta = (h.median - b.median) * 1000;
  return [
    c.label,
    fmtStats(b, 3),
    fmtStats(h, 3),
    `${delta >= 0 ? "+" : ""}${delta.toFixed(0)}`,
    trees.map((t) => [...codes.get(`${c.label}|${t.label}`)!].join(",")).join(" / "),
  ];
});
const body = `## Start time against a base commit

The same commands from this checkout and from an earlier commit (a temporary git worktree),
interleaved, ${flags.reps} runs each, from source (\`deno run -A main.ts\`), seconds as median
(min–max). \`set_mode\` on a fresh data dir is \`run\`'s start path up to its mode decision (config,
data dir lock, registry checks, probe, claim), without consul.

${provenance()}

${
  table(
    ["command", `base ${baseRev}, s`, `this ${headRev}, s`, "difference, ms", "exit codes"],
    rows,
  )
}
`;
console.log(body);
await writeSection(NAME, body);
