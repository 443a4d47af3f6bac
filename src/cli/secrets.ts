/**
 * The ACL token and gossip key: from a file or the environment, never from argv. Each is
 * registered with the logger so that no log line can ever contain it.
 */
import { errorText, UsageError } from "../errors.ts";
import { registerSecret } from "../log.ts";

export interface Secrets {
  token?: string;
  gossipKey?: string;
  /** One line each: a secret file that others may read (mode bits for group or others). */
  warnings: string[];
}

type ReadFile = (path: string) => string;
/** The permission bits of a file (undefined where unknown, e.g. not on Unix). */
type FileMode = (path: string) => number | undefined;

/** The warning for a secret file readable or writable by group or others, if it is. */
export function secretFileWarning(path: string, what: string, mode: number | undefined) {
  if (mode === undefined || (mode & 0o077) === 0) return undefined;
  return `${what} file ${path} is readable by others (mode ${
    (mode & 0o777).toString(8).padStart(4, "0")
  }): chmod 600 it`;
}

function fromFile(path: string, what: string, read: ReadFile): string {
  let text: string;
  try {
    text = read(path);
  } catch (err) {
    const why = errorText(err).split(":")[0];
    throw new UsageError(`cannot read ${what} file "${path}": ${why}`);
  }
  const v = text.trim();
  if (v === "" || v.length > 4096 || /\s/.test(v)) {
    throw new UsageError(`${what} file "${path}" must hold one value on one line`);
  }
  return v;
}

export function loadSecrets(
  opts: { tokenFile?: string; gossipKeyFile?: string },
  env: Record<string, string | undefined>,
  read: ReadFile,
  modeOf: FileMode = () => undefined,
): Secrets {
  const token = opts.tokenFile
    ? fromFile(opts.tokenFile, "ACL token", read)
    : env.CONSUL_HTTP_TOKEN || undefined;
  const gossipKey = opts.gossipKeyFile
    ? fromFile(opts.gossipKeyFile, "gossip key", read)
    : env.AUTO_CONSUL_GOSSIP_KEY || undefined;
  if (gossipKey !== undefined && !/^[A-Za-z0-9+/]{22,}={0,2}$/.test(gossipKey)) {
    // Not echoing the value: it is a secret even when malformed.
    throw new UsageError("invalid gossip key: expected base64 of 16 or 32 bytes (consul keygen)");
  }
  registerSecret(token);
  registerSecret(gossipKey);
  const warnings = [
    opts.tokenFile && secretFileWarning(opts.tokenFile, "ACL token", modeOf(opts.tokenFile)),
    opts.gossipKeyFile &&
    secretFileWarning(opts.gossipKeyFile, "gossip key", modeOf(opts.gossipKeyFile)),
  ].filter((w): w is string => typeof w === "string");
  return { token, gossipKey, warnings };
}
