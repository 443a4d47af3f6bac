/**
 * Registry URLs → locations (pure, table-tested), keys accepted by every backend, and the
 * promise that opening a registry loads the AWS SDK only for s3:// URLs.
 */
import assert from "node:assert/strict";
import { keyProblem } from "../src/registry/key.ts";
import {
  bucketNameProblem,
  openRegistry,
  parseRegistryUrl,
  type RegistryLocation,
} from "../src/registry/open.ts";
import { checkEndpoint } from "../src/registry/s3.ts";

Deno.test("parseRegistryUrl: valid URLs", () => {
  const cases: [string, RegistryLocation][] = [
    ["s3://my-bucket/consul", { scheme: "s3", bucket: "my-bucket", prefix: "consul" }],
    ["s3://my-bucket/a/b/c/", { scheme: "s3", bucket: "my-bucket", prefix: "a/b/c" }],
    ["s3://my-bucket//lead", { scheme: "s3", bucket: "my-bucket", prefix: "lead" }],
    ["s3://my-bucket", { scheme: "s3", bucket: "my-bucket", prefix: "" }],
    ["s3://my-bucket/", { scheme: "s3", bucket: "my-bucket", prefix: "" }],
    ["S3://my.bucket.example/p", { scheme: "s3", bucket: "my.bucket.example", prefix: "p" }],
    ["s3://abc/with space+plus", { scheme: "s3", bucket: "abc", prefix: "with space+plus" }],
    ["file:///var/lib/registry", {
      scheme: "file",
      root: "/var/lib/registry",
      ignoreConditions: false,
    }],
    ["file:///var/lib/registry/", {
      scheme: "file",
      root: "/var/lib/registry",
      ignoreConditions: false,
    }],
    ["file://localhost/tmp/r", { scheme: "file", root: "/tmp/r", ignoreConditions: false }],
    ["file:///tmp/with%20space", {
      scheme: "file",
      root: "/tmp/with space",
      ignoreConditions: false,
    }],
    ["file:///tmp/r?ignore-conditions=1", {
      scheme: "file",
      root: "/tmp/r",
      ignoreConditions: true,
    }],
    ["file:///", { scheme: "file", root: "/", ignoreConditions: false }],
  ];
  for (const [url, want] of cases) assert.deepEqual(parseRegistryUrl(url), want, url);
});

Deno.test("parseRegistryUrl: bad URLs throw one-line TypeErrors naming the value", () => {
  const cases: [string, RegExp][] = [
    ["", /invalid registry URL "": expected s3:\/\/bucket\/prefix or file:\/\/\/absolute\/path/],
    ["my-bucket/prefix", /invalid registry URL "my-bucket\/prefix"/],
    [
      "http://example.com/x",
      /unsupported registry URL scheme "http:" .*expected one of s3:\/\/, file:\/\//,
    ],
    ["gs://bucket/x", /unsupported registry URL scheme "gs:"/],
    ["s3://", /missing bucket name/],
    ["s3:///prefix", /missing bucket name/],
    ["s3:bucket/prefix", /expected s3:\/\/bucket\/prefix/],
    ["s3://My_Bucket-/p", /invalid S3 bucket name "My_Bucket-"/],
    ["s3://ab/p", /invalid S3 bucket name "ab"/],
    ["s3://-bucket/p", /invalid S3 bucket name "-bucket"/],
    ["s3://bucket-/p", /invalid S3 bucket name "bucket-"/],
    ["s3://a..b/p", /expected no two adjacent periods/],
    ["s3://192.168.1.1/p", /not an IP address/],
    [`s3://${"a".repeat(64)}/p`, /invalid S3 bucket name/],
    ["s3://bucket/a//b", /invalid S3 prefix "a\/\/b"/],
    ["s3://bucket/a/../b", /invalid S3 prefix "a\/..\/b"/],
    ["s3://bucket/p?x=1", /expected no query or fragment/],
    ["s3://bucket/p\nq", /expected no control characters/],
    ["s3://bucket/p\\q", /expected no control characters or backslashes/],
    ["file://relative/path", /expected an absolute path, file:\/\/\/absolute\/path/],
    ["file:relative", /expected an absolute path/],
    ["file:/single-slash", /expected an absolute path/],
    ["file:///a/../etc", /expected no NUL, "." or ".."/],
    ["file:///a/%2e%2e/etc", /expected no NUL, "." or ".."/],
    ["file:///a/%00", /expected no NUL/],
    ["file:///a/%zz", /expected valid percent-encoding/],
    ["file:///tmp/r?bogus=1", /unknown option "bogus=1" .*expected only ignore-conditions=1/],
    ["file:///tmp/r#frag", /expected no fragment/],
  ];
  for (const [url, re] of cases) {
    assert.throws(() => parseRegistryUrl(url), (err: unknown) => {
      assert.ok(err instanceof TypeError, `${JSON.stringify(url)}: ${err}`);
      assert.match(err.message, re, JSON.stringify(url));
      assert.doesNotMatch(err.message, /\n/, "one line");
      return true;
    });
  }
});

Deno.test("bucketNameProblem and keyProblem", () => {
  for (const ok of ["abc", "my-bucket", "my.bucket", "a1b", "a".repeat(63), "Legacy_Bucket"]) {
    assert.equal(bucketNameProblem(ok), undefined, ok);
  }
  for (const bad of ["ab", "a b", "a/b", "x".repeat(256), "a..b", "10.0.0.1", "bücket"]) {
    assert.notEqual(bucketNameProblem(bad), undefined, bad);
  }
  for (const ok of ["servers/20140516092731-web-1-a", "a", "slots/0/1", "x/héllo wörld"]) {
    assert.equal(keyProblem(ok), undefined, ok);
  }
  for (const bad of ["", "/a", "a/", "a//b", "../a", "a/./b", "a\\b", "a\0b", "a\nb"]) {
    assert.notEqual(keyProblem(bad), undefined, JSON.stringify(bad));
  }
  assert.notEqual(keyProblem("k".repeat(1025)), undefined);
});

Deno.test("checkEndpoint: http(s) URLs without credentials", () => {
  assert.equal(checkEndpoint("http://127.0.0.1:9000/"), "http://127.0.0.1:9000");
  assert.equal(checkEndpoint("https://s3.example.com"), "https://s3.example.com");
  assert.throws(() => checkEndpoint("127.0.0.1:9000"), /invalid S3 endpoint "127.0.0.1:9000"/);
  assert.throws(() => checkEndpoint("ftp://host"), TypeError);
  assert.throws(
    () => checkEndpoint("http://AKIA:secret@host"),
    (err: unknown) => err instanceof TypeError && !err.message.includes("secret"),
  );
});

Deno.test("openRegistry: picks the backend by scheme; bad URLs reject", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const reg = await openRegistry(`file://${dir}`);
    assert.equal(reg.url, `file://${dir}`);
    reg.close();
    await assert.rejects(openRegistry("ftp://x/y"), TypeError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("opening a registry loads the AWS SDK only for s3:// (dynamic import)", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", new URL("../src/registry/open.ts", import.meta.url).pathname],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    roots: string[];
    modules: {
      specifier: string;
      dependencies?: { code?: { specifier?: string }; isDynamic?: boolean }[];
    }[];
  };
  const bySpec = new Map(info.modules.map((m) => [m.specifier, m]));
  const seen = new Set<string>();
  const todo = [...info.roots];
  for (let i = 0; i < todo.length && i < 10_000; i++) { // bounded walk of static imports
    const spec = todo[i];
    if (seen.has(spec)) continue;
    seen.add(spec);
    for (const d of bySpec.get(spec)?.dependencies ?? []) {
      if (d.code?.specifier && !d.isDynamic) todo.push(d.code.specifier);
    }
  }
  const npm = [...seen].filter((s) => s.startsWith("npm:"));
  assert.deepEqual(npm, [], "static imports of open.ts reach npm packages");
  assert.ok(![...seen].some((s) => s.endsWith("/registry/s3.ts")), "s3.ts imported statically");
  // deno info merges a static and a dynamic import of the same specifier: check the source too
  const src = await Deno.readTextFile(new URL("../src/registry/open.ts", import.meta.url));
  const staticImports = src.split("\n").filter((l) =>
    /^\s*(import|export)\b(?!\s+type\b)[^(]*["']\.\/s3\.ts["']/.test(l)
  );
  assert.deepEqual(staticImports, [], "open.ts must import s3.ts only with import()");
});
