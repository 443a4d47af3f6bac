/**
 * The one logging module. Human text by default, JSON lines with `--log-format json`.
 * Every line names the component (the command, or a part of `run`) and the node.
 * Everything goes to stderr: stdout is for data. Fields are camelCase with their unit last
 * (`retryInMs`, `uptimeSeconds`, `dataDir`).
 */

export type Level = "debug" | "info" | "warn" | "error";
export type LogFormat = "text" | "json";

const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LogSink {
  (line: string): void;
}

const encoder = new TextEncoder();
const stderrSink: LogSink = (line) => {
  try {
    Deno.stderr.writeSync(encoder.encode(line + "\n"));
  } catch {
    // stderr closed: nothing sensible left to do with a log line
  }
};

/** Values that must never be printed. Registered by the config loader (gossip key, ACL token). */
const secrets = new Set<string>();

/** Remember a secret so that no log line ever contains it. */
export function registerSecret(value: string | undefined): void {
  if (value && value.length >= 4) secrets.add(value);
}

function redact(text: string): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join("[redacted]");
  return out;
}

export interface LoggerOptions {
  level?: Level;
  format?: LogFormat;
  component?: string;
  node?: string;
  sink?: LogSink;
  now?: () => Date;
}

export class Logger {
  readonly level: Level;
  readonly format: LogFormat;
  readonly component: string;
  readonly node: string;
  #sink: LogSink;
  #now: () => Date;

  constructor(opts: LoggerOptions = {}) {
    this.level = opts.level ?? "info";
    this.format = opts.format ?? "text";
    this.component = opts.component ?? "auto-consul";
    this.node = opts.node ?? "";
    this.#sink = opts.sink ?? stderrSink;
    this.#now = opts.now ?? (() => new Date());
  }

  /** A logger for a sub-component (e.g. "run/join"), same node, level and format. */
  child(component: string): Logger {
    return new Logger({
      level: this.level,
      format: this.format,
      component,
      node: this.node,
      sink: this.#sink,
      now: this.#now,
    });
  }

  /** The same logger for another node name (known only once the config is parsed). */
  withNode(node: string): Logger {
    return new Logger({
      level: this.level,
      format: this.format,
      component: this.component,
      node,
      sink: this.#sink,
      now: this.#now,
    });
  }

  enabled(level: Level): boolean {
    return ORDER[level] >= ORDER[this.level];
  }

  debug(msg: string, fields?: Record<string, unknown>): void {
    this.#write("debug", msg, fields);
  }
  info(msg: string, fields?: Record<string, unknown>): void {
    this.#write("info", msg, fields);
  }
  warn(msg: string, fields?: Record<string, unknown>): void {
    this.#write("warn", msg, fields);
  }
  error(msg: string, fields?: Record<string, unknown>): void {
    this.#write("error", msg, fields);
  }

  #write(level: Level, msg: string, fields?: Record<string, unknown>): void {
    if (!this.enabled(level)) return;
    const ts = this.#now().toISOString();
    let line: string;
    if (this.format === "json") {
      line = JSON.stringify({
        ts,
        level,
        component: this.component,
        node: this.node,
        msg,
        ...fields,
      });
    } else {
      const extra = fields
        ? Object.entries(fields).map(([k, v]) => ` ${k}=${fmtValue(v)}`).join("")
        : "";
      const who = this.node ? `${this.component} ${this.node}` : this.component;
      line = `${ts} ${level.toUpperCase().padEnd(5)} [${who}] ${escapeControls(msg)}${extra}`;
    }
    this.#sink(redact(line));
  }
}

/**
 * Control characters (C0, DEL, C1) and bidirectional overrides, which registry keys and
 * consul's output may carry, as escapes: a text log line never moves the cursor, clears a
 * terminal or reorders what it shows. (JSON lines escape them by themselves.)
 */
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;
const CONTROLS = new RegExp(CONTROL.source, "g");

export function escapeControls(s: string): string {
  return s.replace(CONTROLS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

function fmtValue(v: unknown): string {
  if (typeof v === "string") {
    return /[\s"=]/.test(v) || CONTROL.test(v) ? escapeControls(JSON.stringify(v)) : v;
  }
  if (v instanceof Error) return escapeControls(JSON.stringify(v.message));
  return escapeControls(JSON.stringify(v) ?? String(v));
}

export function parseLevel(s: string): Level {
  if (s in ORDER) return s as Level;
  throw new TypeError(`invalid log level "${s}": expected one of debug, info, warn, error`);
}
