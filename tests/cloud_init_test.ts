/**
 * The cloud-init path (issue 16, acceptance 3): `cloud-init schema` accepts the shipped
 * #cloud-config and the README's snippet; the unit and script it embeds are the shipped files;
 * and its script part, run against local files (file:// releases, stub `aws`, `systemctl`,
 * `useradd`; no network), installs consul and auto-consul only when their SHA-256 matches,
 * writes the gossip key and the environment file, and enables the unit.
 * Needs Debian's cloud-init, curl and python3 (scripts/install-deps.sh installs them).
 */
import assert from "node:assert/strict";
import { REPO } from "./harness/proc.ts";

const YAML = `${REPO}/scripts/cloud-init/auto-consul.yaml`;
const SCRIPT = `${REPO}/scripts/cloud-init/bootstrap.sh`;
const UNIT = `${REPO}/scripts/systemd/auto-consul.service`;
const KEY = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=";

async function run(
  cmd: string,
  args: string[],
  opts: { env?: Record<string, string>; stdin?: string } = {},
): Promise<{ code: number; out: string }> {
  const child = new Deno.Command(cmd, {
    args,
    env: opts.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
  let o: Deno.CommandOutput;
  try {
    o = await child.output();
  } catch (err) {
    throw new Error(
      `${cmd} cannot run (${(err as Error).message}): bash scripts/install-deps.sh installs it`,
    );
  }
  const d = new TextDecoder();
  return { code: o.code, out: d.decode(o.stdout) + d.decode(o.stderr) };
}

async function schema(path: string): Promise<void> {
  const r = await run("cloud-init", ["schema", "--config-file", path]);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /Valid cloud-config/, r.out);
}

/** The YAML as JSON, through Debian's python3-yaml (no YAML parser in the project). */
async function loadYaml(
  path: string,
): Promise<
  { write_files: { path: string; content: string; permissions: string }[]; runcmd: unknown[] }
> {
  const r = await run("python3", [
    "-c",
    "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
    path,
  ]);
  assert.equal(r.code, 0, r.out);
  return JSON.parse(r.out);
}

async function sha256(path: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("cloud-init schema accepts the shipped #cloud-config", async () => {
  await schema(YAML);
});

Deno.test("cloud-init schema accepts the README's snippet", async () => {
  const readme = await Deno.readTextFile(`${REPO}/README.md`);
  const section = readme.split("\n### cloud-init\n")[1];
  assert.ok(section, "README has a cloud-init section");
  const m = /```yaml\n([\s\S]*?)```/.exec(section);
  assert.ok(m, "the section has a yaml block");
  assert.match(m[1], /^#cloud-config\n/);
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/snippet.yaml`, m[1]);
    await schema(`${dir}/snippet.yaml`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the #cloud-config embeds the shipped unit and bootstrap script (embed.ts), and runs it", async () => {
  const doc = await loadYaml(YAML);
  const file = (p: string) => doc.write_files.find((w) => w.path === p);
  assert.equal(
    file("/etc/systemd/system/auto-consul.service")?.content,
    await Deno.readTextFile(UNIT),
  );
  assert.equal(
    file("/usr/local/sbin/auto-consul-bootstrap")?.content,
    await Deno.readTextFile(SCRIPT),
  );
  assert.equal(file("/usr/local/sbin/auto-consul-bootstrap")?.permissions, "0755");
  assert.equal(file("/etc/auto-consul/bootstrap.env")?.permissions, "0600");
  assert.doesNotMatch(
    file("/etc/auto-consul/bootstrap.env")!.content,
    /^[^#]*=[A-Za-z0-9+/]{43}=$/m,
    "no key in user data",
  );
  assert.deepEqual(doc.runcmd, [["/usr/local/sbin/auto-consul-bootstrap"]]);
});

/** A fake machine: a root folder, release files served as file://, stub commands. */
interface Machine {
  dir: string;
  root: string;
  env: Record<string, string>;
  /** Lines written by the stubs: "aws ...", "systemctl ...", "useradd ...". */
  calls(): Promise<string[]>;
  run(): Promise<{ code: number; out: string }>;
}

async function withMachine(
  fn: (m: Machine) => Promise<void>,
  opts: { arch?: string; key?: string; tamper?: boolean } = {},
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "auto-consul-cloud-init-" });
  try {
    const root = `${dir}/root`;
    const rel = `${dir}/releases`;
    const stubs = `${dir}/stubs`;
    for (const d of [root, `${rel}/consul/1.17.3`, `${rel}/auto-consul`, stubs]) {
      await Deno.mkdir(d, { recursive: true });
    }
    const arch = opts.arch ?? "x86_64";
    const goarch = arch === "x86_64" ? "amd64" : "arm64";
    // The release files: a consul zip (as HashiCorp ships it) and an auto-consul binary.
    await Deno.writeTextFile(`${dir}/consul`, `#!/bin/sh\necho "Consul v1.17.3 ${goarch}"\n`);
    const zip = `${rel}/consul/1.17.3/consul_1.17.3_linux_${goarch}.zip`;
    const z = await run("python3", [
      "-c",
      "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1], 'w'); z.write(sys.argv[2], 'consul'); z.close()",
      zip,
      `${dir}/consul`,
    ]);
    assert.equal(z.code, 0, z.out);
    const bin = `${rel}/auto-consul/auto-consul-linux-${arch}`;
    await Deno.writeTextFile(bin, `#!/bin/sh\necho "auto-consul 0.1.0 ${arch}"\n`);
    const sums = { consul: await sha256(zip), auto: await sha256(bin) };
    if (opts.tamper) await Deno.writeTextFile(bin, "#!/bin/sh\necho owned\n");

    // The settings as the #cloud-config writes them, pointed at the local release files.
    const doc = await loadYaml(YAML);
    let conf = doc.write_files.find((w) => w.path === "/etc/auto-consul/bootstrap.env")!.content;
    const A = arch.toUpperCase();
    conf = conf
      .replace(
        new RegExp(`^INSTALL_CONSUL_SHA256_${A}=.*$`, "m"),
        `INSTALL_CONSUL_SHA256_${A}=${sums.consul}`,
      )
      .replace(
        new RegExp(`^INSTALL_AUTO_CONSUL_SHA256_${A}=.*$`, "m"),
        `INSTALL_AUTO_CONSUL_SHA256_${A}=${sums.auto}`,
      )
      .replace(
        /^INSTALL_AUTO_CONSUL_URL=.*$/m,
        `INSTALL_AUTO_CONSUL_URL=file://${rel}/auto-consul`,
      ) +
      `INSTALL_CONSUL_URL=file://${rel}/consul\n`;
    await Deno.mkdir(`${root}/etc/auto-consul`, { recursive: true });
    await Deno.writeTextFile(`${root}/etc/auto-consul/bootstrap.env`, conf);

    // Stubs: each logs its argv; `aws` prints the key; `id` says the user does not exist.
    const log = `${dir}/calls.log`;
    const stub = async (name: string, body = "") =>
      await Deno.writeTextFile(
        `${stubs}/${name}`,
        `#!/bin/sh\necho "${name} $*" >> "${log}"\n${body}`,
        { mode: 0o755 },
      );
    await stub("aws", `printf '%s\\n' '${opts.key ?? KEY}'\n`);
    await stub("systemctl");
    await stub("useradd");
    await stub("id", "exit 1\n");
    const env = {
      ROOT: root,
      ARCH: arch,
      PATH: `${stubs}:${Deno.env.get("PATH")}`,
      HOME: dir,
    };
    await fn({
      dir,
      root,
      env,
      calls: async () =>
        (await Deno.readTextFile(log).catch(() => "")).split("\n").filter((l) => l),
      run: () => run("bash", [SCRIPT], { env }),
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("bootstrap script: checked installs, gossip key from the secret source, env file, unit enabled", async () => {
  for (const arch of ["x86_64", "aarch64"]) {
    await withMachine(async (m) => {
      const r = await m.run();
      assert.equal(r.code, 0, r.out);
      assert.ok(!r.out.includes(KEY), "the key is never printed");
      // Both binaries installed, executable, the expected build for this machine.
      const goarch = arch === "x86_64" ? "amd64" : "arm64";
      for (
        const [exe, want] of [["consul", `Consul v1.17.3 ${goarch}`], [
          "auto-consul",
          `auto-consul 0.1.0 ${arch}`,
        ]]
      ) {
        const p = `${m.root}/usr/local/bin/${exe}`;
        assert.equal((await Deno.stat(p)).mode! & 0o777, 0o755, p);
        assert.equal((await run(p, [])).out.trim(), want);
      }
      // The gossip key, root-only, from the SSM parameter named in the settings.
      const key = `${m.root}/etc/auto-consul/gossip.key`;
      assert.equal(await Deno.readTextFile(key), `${KEY}\n`);
      assert.equal((await Deno.stat(key)).mode! & 0o777, 0o600);
      assert.equal((await Deno.stat(`${m.root}/etc/auto-consul`)).mode! & 0o777, 0o700);
      // The environment file: the node's settings only, no install settings, no key.
      const envFile = await Deno.readTextFile(`${m.root}/etc/default/auto-consul`);
      assert.equal(
        envFile,
        "AUTO_CONSUL_REGISTRY=s3://acme-consul/prod\nAUTO_CONSUL_SERVERS=3\nAWS_REGION=eu-west-1\n",
      );
      assert.equal((await Deno.stat(`${m.root}/etc/default/auto-consul`)).mode! & 0o777, 0o644);
      assert.deepEqual(await m.calls(), [
        "id -u auto-consul",
        "useradd --system --home-dir /var/lib/auto-consul --shell /usr/sbin/nologin auto-consul",
        "aws ssm get-parameter --with-decryption --name /consul/prod/gossip-key --query Parameter.Value --output text",
        "systemctl daemon-reload",
        "systemctl enable --now auto-consul.service",
      ]);
      // Run again: the same result (cloud-init may re-run it on a re-provisioned instance).
      const again = await m.run();
      assert.equal(again.code, 0, again.out);
      assert.equal(await Deno.readTextFile(key), `${KEY}\n`);
    }, { arch });
  }
});

Deno.test("bootstrap script: a tampered download is refused, nothing installed or started", async () => {
  await withMachine(async (m) => {
    const r = await m.run();
    assert.equal(r.code, 1, r.out);
    assert.match(
      r.out,
      /^auto-consul-bootstrap: checksum mismatch for file:\/\/\S+\/auto-consul-linux-x86_64: expected [0-9a-f]{64}, got [0-9a-f]{64}$/m,
    );
    await assert.rejects(
      () => Deno.stat(`${m.root}/usr/local/bin/auto-consul`),
      Deno.errors.NotFound,
    );
    await assert.rejects(
      () => Deno.stat(`${m.root}/etc/auto-consul/gossip.key`),
      Deno.errors.NotFound,
    );
    assert.deepEqual(await m.calls(), []);
  }, { tamper: true });
});

Deno.test("bootstrap script: a secret source that prints no key stops before the unit starts", async () => {
  await withMachine(async (m) => {
    const r = await m.run();
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /GOSSIP_KEY_COMMAND did not print a gossip key/);
    assert.ok(!r.out.includes("not-a-key!"), "the bad value is not echoed");
    assert.ok(!(await m.calls()).some((c) => c.startsWith("systemctl")));
  }, { key: "not-a-key!" });
});
