/**
 * Checks the import graph of the repository for cycles: every relative import between the
 * TypeScript files of main.ts, src/, tests/ and scripts/ — static, `import type`,
 * `export ... from` and dynamic `import("./x.ts")` alike (a type-only or lazy edge still ties
 * two modules together). Prints each cycle and exits 1 when there is one; run by the test task.
 *
 *   deno run --allow-read scripts/check_imports.ts [ROOT]
 */
import { dirname, join, normalize, relative } from "node:path";

/** The relative module specifiers a TypeScript source imports (comments ignored). */
export function importsOf(source: string): string[] {
  const code = source
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/^\s*\/\/.*$/gm, "");
  const out = new Set<string>();
  const staticRe = /^\s*(?:import|export)\b[^;'"]*?\bfrom\s*["']([^"']+)["']/gm;
  const bareRe = /^\s*import\s*["']([^"']+)["']/gm;
  const dynamicRe = /\bimport\(\s*["']([^"']+)["']\s*\)/g;
  for (const re of [staticRe, bareRe, dynamicRe]) {
    for (const m of code.matchAll(re)) if (m[1].startsWith(".")) out.add(m[1]);
  }
  return [...out];
}

/**
 * The cycles of a graph: each strongly connected component of more than one module, or a
 * module importing itself, as a path that starts and ends at the same module.
 */
export function findCycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, idx.get(w)!));
      }
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) components.push(scc);
    }
  };
  for (const v of [...graph.keys()].sort()) if (!idx.has(v)) visit(v);
  return components.map((scc) => cyclePath(graph, new Set(scc)));
}

/** One cycle through a strongly connected component, for the message: a → b → a. */
function cyclePath(graph: ReadonlyMap<string, readonly string[]>, scc: Set<string>): string[] {
  const start = [...scc].sort()[0];
  const prev = new Map<string, string>();
  const queue = [start];
  while (queue.length) {
    const v = queue.shift()!;
    for (const w of graph.get(v) ?? []) {
      if (!scc.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (let x = v; x !== start; x = prev.get(x)!) path.splice(1, 0, x);
        return [...path, start];
      }
      if (!prev.has(w)) {
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}

/** The import graph of the .ts files under `root` (main.ts, src/, tests/, scripts/). */
export async function importGraph(root: string): Promise<Map<string, string[]>> {
  const files: string[] = [];
  const walk = async (dir: string) => {
    let entries;
    try {
      entries = [...Deno.readDirSync(join(root, dir))];
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return;
      throw err;
    }
    for (const e of entries) {
      const rel = join(dir, e.name);
      if (e.isDirectory) await walk(rel);
      else if (e.isFile && e.name.endsWith(".ts")) files.push(rel);
    }
  };
  for (const d of ["src", "tests", "scripts"]) await walk(d);
  try {
    Deno.statSync(join(root, "main.ts"));
    files.push("main.ts");
  } catch { /* no entry point */ }
  const graph = new Map<string, string[]>();
  for (const f of files.sort()) {
    const source = await Deno.readTextFile(join(root, f));
    graph.set(
      f,
      importsOf(source).map((s) => relative(root, normalize(join(root, dirname(f), s)))),
    );
  }
  return graph;
}

if (import.meta.main) {
  const root = Deno.args[0] ?? join(import.meta.dirname!, "..");
  const graph = await importGraph(root);
  const cycles = findCycles(graph);
  for (const c of cycles) console.error(`import cycle: ${c.join(" -> ")}`);
  if (cycles.length > 0) Deno.exit(1);
  console.log(`no import cycle among ${graph.size} modules`);
}
