/**
 * The gem's command-line conventions (Ruby's OptionParser), as pure argv rewrites done before
 * parsing: unique prefixes of long flags (`--data X`, `--reg=URL`), `-- COMMAND`, and extra
 * words after the command (ignored with a warning, as the gem ignored them).
 */
import { UsageError } from "../errors.ts";

/** What the rewrites need to know of a flag. */
export interface ArgvFlag {
  name: string;
  short?: string;
  type: "string" | "boolean";
  aliases?: string[];
  /** One of the gem's own flags: a prefix unique among these means this flag, as it did. */
  gem?: boolean;
  /** Commands the flag applies to; undefined: every command. */
  commands?: string[];
}

const LONG_RE = /^--([a-z][a-z0-9-]*)(=.*)?$/;

/** True when `arg` takes the next argument as its value (a string flag without `=value`). */
function takesValue(arg: string, flags: ArgvFlag[]): boolean {
  const long = LONG_RE.exec(arg);
  if (long) {
    if (long[2] !== undefined) return false;
    const f = flags.find((f) => f.name === long[1] || f.aliases?.includes(long[1]));
    return f?.type === "string";
  }
  const short = /^-([A-Za-z])$/.exec(arg);
  if (short) return flags.find((f) => f.short === short[1])?.type === "string";
  return false;
}

/**
 * The command word: the first argument before `--` that is neither a flag nor a flag's
 * value; when there is none, the first word after `--` (the gem's `auto-consul -r URL -- run`).
 * Undefined when there is no word at all.
 */
export function findCommandWord(
  argv: string[],
  flags: ArgvFlag[],
): { word: string; index: number } | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") {
      const next = argv[i + 1];
      return next !== undefined && !next.startsWith("-") ? { word: next, index: i + 1 } : undefined;
    }
    if (a.startsWith("-") && a !== "-") {
      const m = LONG_RE.exec(a);
      const full = m
        ? `--${longCandidates(m[1], flags, undefined)[0]?.name ?? m[1]}${m[2] ?? ""}`
        : a;
      if (takesValue(full, flags)) i++;
      continue;
    }
    return { word: a, index: i };
  }
  return undefined;
}

/** The full long name for `--prefix[=v]`, or undefined when it is no long flag or unknown. */
function expandOne(
  arg: string,
  flags: ArgvFlag[],
  command: string | undefined,
): string | undefined {
  const m = LONG_RE.exec(arg);
  if (!m) return undefined;
  const name = resolveLongName(m[1], flags, command);
  return name === undefined ? undefined : `--${name}${m[2] ?? ""}`;
}

/**
 * Resolves a long flag name or unique prefix, like OptionParser: an exact name (or alias)
 * wins; else a prefix unique among the gem's flags means that flag (the gem's scripts keep
 * working); else it must be unique among the flags of the command. An ambiguous prefix is a
 * UsageError naming the candidates; an unknown one gives undefined (reported later).
 */
export function resolveLongName(
  name: string,
  flags: ArgvFlag[],
  command: string | undefined,
): string | undefined {
  const all = longCandidates(name, flags, command);
  if (all.length === 1) return all[0].name;
  if (all.length > 1) {
    const names = all.map((f) => `--${f.name}`);
    throw new UsageError(
      `ambiguous flag "--${name}": it could be ${names.slice(0, -1).join(", ")} or ${
        names.at(-1)
      }; give more of its name`,
    );
  }
  return undefined;
}

/** The flags `--name` may mean (one when it resolves; several when it is ambiguous). */
function longCandidates(name: string, flags: ArgvFlag[], command: string | undefined): ArgvFlag[] {
  const exact = flags.find((f) => f.name === name || f.aliases?.includes(name));
  if (exact) return [{ ...exact, name }];
  const applicable = flags.filter((f) =>
    !f.commands || command === undefined || f.commands.includes(command)
  );
  const matches = (set: ArgvFlag[]) => set.filter((f) => f.name.startsWith(name));
  const gem = matches(applicable.filter((f) => f.gem));
  return gem.length === 1 ? gem : matches(applicable);
}

/**
 * Rewrites unique prefixes of long flags to the full names, before `--` only, never touching
 * a flag's value (`-n --reg` names a node "--reg").
 */
export function expandLongPrefixes(
  argv: string[],
  flags: ArgvFlag[],
  command: string | undefined,
): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") {
      out.push(...argv.slice(i));
      break;
    }
    const full = expandOne(a, flags, command) ?? a;
    out.push(full);
    if (takesValue(full, flags) && i + 1 < argv.length && argv[i + 1] !== "--") {
      out.push(argv[++i]);
    }
  }
  return out;
}

/**
 * `auto-consul [flags] -- COMMAND [words]`: moves COMMAND before the `--`; the words after it
 * are extra words (returned apart, never parsed as flags: the gem ignored them), and a second
 * `--` still starts consul's arguments. Any other argv is returned unchanged.
 */
export function commandAfterDoubleDash(
  argv: string[],
  flags: ArgvFlag[],
): { argv: string[]; extra: string[] } {
  const found = findCommandWord(argv, flags);
  if (!found || argv[found.index - 1] !== "--") return { argv, extra: [] };
  const dd = found.index - 1;
  const rest = argv.slice(found.index + 1);
  const second = rest.indexOf("--");
  const extra = second >= 0 ? rest.slice(0, second) : rest;
  const consul = second >= 0 ? rest.slice(second) : [];
  return { argv: [...argv.slice(0, dd), found.word, ...consul], extra };
}

/** The warning for words after the command (the gem ignored them). */
export function extraWordsWarning(command: string, words: string[]): string {
  const shown = words.slice(0, 5).map((w) => JSON.stringify(w.slice(0, 60))).join(" ");
  return `ignoring ${words.length === 1 ? "an extra word" : `${words.length} extra words`} ` +
    `after ${command}: ${shown}${words.length > 5 ? " …" : ""} (consul's flags go after --)`;
}

/** The tagger wrote `-consul-service-name x` (one dash) and `-flag=value`: accept both. */
export function normaliseSingleDash(argv: string[], flags: readonly ArgvFlag[]): string[] {
  const longNames = new Set(flags.flatMap((f) => [f.name, ...(f.aliases ?? [])]));
  const dd = argv.indexOf("--");
  // elect takes the tagger's Go-style flags: there `-bogus` is an unknown flag, not `-b ogus`
  const goStyle = (dd < 0 ? argv : argv.slice(0, dd)).includes("elect");
  const out: string[] = [];
  for (const a of argv) {
    if (a === "--") {
      out.push(...argv.slice(out.length));
      break;
    }
    const m = /^-([a-z][a-z0-9-]+)(=.*)?$/.exec(a);
    if (m && !longNames.has(m[1]) && goStyle && /^[a-z][a-z-]+$/.test(m[1])) {
      throw new UsageError(`unknown flag "-${m[1]}": see auto-consul help elect`);
    }
    out.push(m && longNames.has(m[1]) ? `-${a}` : a);
  }
  return out;
}

/**
 * A string flag always takes the next argument as its value, even when it starts with "-"
 * (as the gem's OptionParser did): `-e -5` must say "-5 is not a valid expiry", not
 * "ambiguous". Rewrites `-e X` / `--expiry X` to `--expiry=X`.
 */
export function joinValues(argv: string[], flags: readonly ArgvFlag[]): string[] {
  const byName = new Map<string, string>();
  for (const f of flags) {
    if (f.type !== "string") continue;
    byName.set(`--${f.name}`, f.name);
    if (f.short) byName.set(`-${f.short}`, f.name);
  }
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") {
      out.push(...argv.slice(i));
      break;
    }
    const name = byName.get(a);
    if (name !== undefined && i + 1 < argv.length && argv[i + 1] !== "--") {
      out.push(`--${name}=${argv[++i]}`);
    } else {
      out.push(a);
    }
  }
  return out;
}

/** Replace alias long names (`--consul-service-name`) with the canonical ones. */
export function canonicalAliases(argv: string[], flags: readonly ArgvFlag[]): string[] {
  const alias = new Map<string, string>();
  for (const f of flags) for (const a of f.aliases ?? []) alias.set(a, f.name);
  const dd = argv.indexOf("--");
  return argv.map((a, i) => {
    if (dd >= 0 && i >= dd) return a;
    const m = /^--([a-z][a-z0-9-]+)(=.*)?$/.exec(a);
    const to = m && alias.get(m[1]);
    return to ? `--${to}${m[2] ?? ""}` : a;
  });
}
