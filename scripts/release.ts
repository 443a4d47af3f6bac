/**
 * `deno task release`: the release files users can check.
 *
 *   dist/release/auto-consul-linux-x86_64    deno compile --target x86_64-unknown-linux-gnu
 *   dist/release/auto-consul-linux-aarch64   deno compile --target aarch64-unknown-linux-gnu
 *   dist/release/auto-consul.js              deno bundle (offline; runs with `deno run`)
 *   dist/release/SHA256SUMS                  `sha256sum` format: "<64 hex>  <name>" per line
 *
 * Users verify with `sha256sum --check --ignore-missing SHA256SUMS` in the download folder.
 * `deno compile` downloads its runtime (denort) for each target from Deno's download server;
 * offline, DENORT_BIN names a denort for this machine's architecture (the other target is then
 * skipped unless DENORT_BIN_X86_64 / DENORT_BIN_AARCH64 name one for it). When compile cannot get
 * its runtime the release fails with one line naming DENORT_BIN. `--bundle-only` builds just the
 * bundle and its SHA256SUMS; `--out DIR` writes elsewhere.
 */
import { REPO } from "../tests/harness/proc.ts";

export const TARGETS = [
  { arch: "x86_64", triple: "x86_64-unknown-linux-gnu" },
  { arch: "aarch64", triple: "aarch64-unknown-linux-gnu" },
] as const;

export interface Artifact {
  name: string;
  sha256: string;
}

/** SHA256SUMS text: one "<hex>  <name>" line per file, sorted by name, as sha256sum writes. */
export function sumsText(files: Artifact[]): string {
  for (const f of files) {
    if (!/^[0-9a-f]{64}$/.test(f.sha256)) throw new Error(`bad SHA-256 for ${f.name}`);
    if (!/^[A-Za-z0-9._-]+$/.test(f.name)) throw new Error(`bad release file name ${f.name}`);
  }
  return [...files].sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
    .map((f) => `${f.sha256}  ${f.name}\n`).join("");
}

export async function sha256File(path: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The `--allow-*` flags of `deno task compile` (one list of the binary's permissions). */
async function compilePermissions(): Promise<string[]> {
  const tasks = JSON.parse(await Deno.readTextFile(`${REPO}/deno.json`)).tasks ?? {};
  const flags = String(tasks.compile ?? "").split(/\s+/).filter((a) => a.startsWith("--allow-"));
  if (flags.length === 0) throw new Error("deno.json has no compile task with --allow-* flags");
  return flags;
}

function hostArch(): string {
  return Deno.build.arch === "aarch64" ? "aarch64" : "x86_64";
}

/** The denort for a target: per-target variable, else DENORT_BIN for this machine's arch. */
export function denortFor(
  arch: string,
  env: Record<string, string | undefined>,
  host: string,
): { use: boolean; denort?: string } {
  const own = env[`DENORT_BIN_${arch.toUpperCase()}`];
  if (own) return { use: true, denort: own };
  if (env.DENORT_BIN) return arch === host ? { use: true, denort: env.DENORT_BIN } : { use: false };
  return { use: true }; // deno compile downloads it
}

async function deno(args: string[], env: Record<string, string> = {}): Promise<string | undefined> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1", ...env },
    cwd: REPO,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (out.code === 0) return undefined;
  return new TextDecoder().decode(out.stderr);
}

function fail(line: string): never {
  console.error(`release: ${line}`);
  Deno.exit(1);
}

async function main(args: string[]): Promise<void> {
  const bundleOnly = args.includes("--bundle-only");
  const o = args.indexOf("--out");
  const out = o >= 0 ? args[o + 1] : `${REPO}/dist/release`;
  if (!out) fail("--out needs a folder");
  await Deno.remove(out, { recursive: true }).catch(() => {});
  await Deno.mkdir(out, { recursive: true });
  const names: string[] = [];

  const bundled = await deno([
    "bundle",
    "--platform",
    "deno",
    "-o",
    `${out}/auto-consul.js`,
    "main.ts",
  ]);
  if (bundled !== undefined) fail(`deno bundle failed: ${bundled.trim().split("\n")[0]}`);
  names.push("auto-consul.js");

  if (!bundleOnly) {
    const perms = await compilePermissions();
    const env = Deno.env.toObject();
    for (const t of TARGETS) {
      const d = denortFor(t.arch, env, hostArch());
      if (!d.use) {
        console.error(
          `release: skipping linux-${t.arch}: DENORT_BIN is a denort for linux-${hostArch()}; ` +
            `set DENORT_BIN_${t.arch.toUpperCase()} for this target`,
        );
        continue;
      }
      const name = `auto-consul-linux-${t.arch}`;
      const err = await deno(
        ["compile", "--target", t.triple, ...perms, "-o", `${out}/${name}`, "main.ts"],
        d.denort ? { DENORT_BIN: d.denort } : {},
      );
      if (err !== undefined) {
        const why = /dns error|lookup|connect|download|tcp|proxy|certificate/i.test(err)
          ? "cannot download the Deno runtime (denort)"
          : `deno compile failed (${err.trim().split("\n")[0].slice(0, 160)})`;
        fail(
          `${why} for ${t.triple}: set DENORT_BIN=/path/to/denort (Deno ${Deno.version.deno}, ` +
            `this machine's arch) or DENORT_BIN_${t.arch.toUpperCase()}, or run where ` +
            "dl.deno.land is reachable; `deno task release --bundle-only` builds the bundle alone",
        );
      }
      names.push(name);
    }
  }

  const files: Artifact[] = [];
  for (const name of names) files.push({ name, sha256: await sha256File(`${out}/${name}`) });
  await Deno.writeTextFile(`${out}/SHA256SUMS`, sumsText(files));
  console.log(`release: ${names.join(", ")} and SHA256SUMS in ${out}`);
}

if (import.meta.main) await main(Deno.args);
