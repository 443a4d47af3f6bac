/**
 * The ACL token and gossip key: from a file or the environment, never from argv. Each is
 * registered with the logger so that no log line can ever contain it.
 */
import { UsageError } from "../errors.ts";
import { registerSecret } from "../log.ts";

export interface Secrets {
  token?: string;
  gossipKey?: string;
}

type ReadFile = (path: string) => string;

function fromFile(path: string, what: string, read: ReadFile): string {
  let text: string;
  try {
    text = read(path);
  } catch (err) {
    const why = err instanceof Error ? err.message.split(":")[0] : String(err);
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
  return { token, gossipKey };
}
