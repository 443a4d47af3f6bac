/** The version and how this copy was built (source, bundle or compiled binary). */
import meta from "../deno.json" with { type: "json" };

export const VERSION: string = meta.version;

export function buildKind(mainModule: string = Deno.mainModule): "compiled" | "bundle" | "source" {
  if (/deno-compile|\/\$deno\$/.test(mainModule)) return "compiled";
  if (mainModule.endsWith(".js")) return "bundle";
  return "source";
}

export function versionLine(): string {
  return `auto-consul ${VERSION} (${buildKind()} build, deno ${Deno.version.deno}, ${Deno.build.target})`;
}
