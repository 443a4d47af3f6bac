/**
 * The measured process of `sdk_rss.ts`: no static import (so "idle" loads nothing), then
 * per argument: idle | import (the S3 registry) | calls (S3, the five calls 5 times) | folder.
 * Prints {"rss": MiB, "heap": MiB} 3 s after its last call.
 */
const what = Deno.args[0];
const enc = (s: string) => new TextEncoder().encode(s);
if (what !== "idle") {
  // deno-lint-ignore no-explicit-any
  let registry: any;
  if (what === "folder") {
    const { FileRegistry } = await import("../../src/registry/file.ts");
    registry = new FileRegistry({ root: Deno.env.get("ROOT")! });
  } else {
    const { S3Registry } = await import("../../src/registry/s3.ts");
    registry = new S3Registry({
      bucket: Deno.env.get("BUCKET")!,
      prefix: "rss",
      endpoint: Deno.env.get("ENDPOINT")!,
    });
  }
  if (what !== "import") {
    for (let i = 0; i < 5; i++) {
      await registry.put(`agents/x${i}`, enc("10.0.0.1"));
      await registry.list("agents/");
      await registry.get(`agents/x${i}`, 256);
      await registry.createIfAbsent(`probe/x${i}`, enc("p"));
      await registry.delete(`probe/x${i}`);
    }
  }
}
await new Promise((r) => setTimeout(r, 3000));
const kb = Number(/VmRSS:\s+(\d+)/.exec(Deno.readTextFileSync("/proc/self/status"))![1]);
console.log(JSON.stringify({ rss: kb / 1024, heap: Deno.memoryUsage().heapUsed / 1048576 }));
Deno.exit(0);
