/**
 * Copies the shipped systemd unit and bootstrap script into auto-consul.yaml (its write_files
 * entries), so the #cloud-config is one self-contained file. Run after changing either:
 *   deno run --allow-read --allow-write scripts/cloud-init/embed.ts
 * tests/cloud_init_test.ts fails while they differ.
 */
const here = new URL(".", import.meta.url).pathname;
const YAML = `${here}auto-consul.yaml`;
const FILES: Record<string, string> = {
  "/usr/local/sbin/auto-consul-bootstrap": `${here}bootstrap.sh`,
  "/etc/systemd/system/auto-consul.service": `${here}../systemd/auto-consul.service`,
};
const INDENT = "      ";

/** The YAML with the `content: |` block of the write_files entry for `path` replaced. */
export function embed(yaml: string, path: string, content: string): string {
  const lines = yaml.split("\n");
  const at = lines.indexOf(`  - path: ${path}`);
  if (at < 0) throw new Error(`no write_files entry for ${path}`);
  let start = at + 1;
  while (start < lines.length && lines[start] !== "    content: |") start++;
  if (start === lines.length) throw new Error(`no "content: |" for ${path}`);
  let end = start + 1;
  while (end < lines.length && (lines[end] === "" || lines[end].startsWith(INDENT))) end++;
  const body = content.replace(/\n$/, "").split("\n").map((l) => l === "" ? "" : INDENT + l);
  return [...lines.slice(0, start + 1), ...body, ...lines.slice(end)].join("\n");
}

if (import.meta.main) {
  let yaml = await Deno.readTextFile(YAML);
  for (const [path, file] of Object.entries(FILES)) {
    yaml = embed(yaml, path, await Deno.readTextFile(file));
  }
  await Deno.writeTextFile(YAML, yaml);
}
