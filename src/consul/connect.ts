/**
 * The one place that builds the consul HTTP client for every command, from the variables
 * consul's own CLI and Go API library read (checked against Consul 1.8's `api.DefaultConfig`;
 * current Consul (1.2x) reads the same ones, plus the Enterprise-only `CONSUL_PARTITION`,
 * which is not read here):
 *
 *   CONSUL_HTTP_ADDR        host:port, http://, https:// or unix:///path (--http-addr wins)
 *   CONSUL_HTTP_SSL         true: https for an address without a scheme
 *   CONSUL_CACERT           CA file to verify the agent's certificate (wins over CONSUL_CAPATH)
 *   CONSUL_CAPATH           folder of CA files
 *   CONSUL_CLIENT_CERT/KEY  client certificate and key (the agent's verify_incoming_https)
 *   CONSUL_TLS_SERVER_NAME  the name the agent's certificate is checked against (and SNI)
 *   CONSUL_HTTP_SSL_VERIFY  false: do not verify the agent's certificate
 *   CONSUL_HTTP_AUTH        user[:password], HTTP basic auth (for a proxy in front of consul)
 *   CONSUL_NAMESPACE        namespace (Consul Enterprise; sent as `ns` on every request)
 *   CONSUL_HTTP_TOKEN(_FILE) the ACL token (read by src/cli/secrets.ts)
 *
 * As in consul's library, the TLS variables only matter for https (a CA given for a plain-http
 * address is ignored), and a unix socket speaks http unless CONSUL_HTTP_SSL says https.
 * Pure parsing (`consulConnection`) is separate from building the client (`connectConsul`).
 * Plain http over TCP uses the runtime's fetch; https and unix sockets go through node:https /
 * node:http (`nodeFetch`), the only client here that can check a certificate against another
 * name than the address's, or not check it at all.
 */
import http from "node:http";
import https from "node:https";
import { UsageError } from "../errors.ts";
import { registerSecret } from "../log.ts";
import { parseConsulAddress } from "./address.ts";
import { ConsulClient } from "./client.ts";

export interface TlsSettings {
  /** PEM text of each CA certificate file (undefined: the system's roots). */
  ca?: string[];
  cert?: string;
  key?: string;
  serverName?: string;
  verify: boolean;
}

/** Everything needed to talk to the agent; `tls` only for https. */
export interface ConsulConnection {
  /** What messages call the agent: "127.0.0.1:8500", "unix:///run/consul.sock". */
  label: string;
  /** Base URL of requests (for a unix socket, only its scheme matters). */
  baseUrl: string;
  unixPath?: string;
  tls?: TlsSettings;
  /** Basic auth "user:password". */
  basicAuth?: string;
  namespace?: string;
}

export type Env = Record<string, string | undefined>;

/** Reads a file's text / lists a folder's files (injected: tests and dispatch). */
export interface FileAccess {
  readText: (path: string) => string;
  listFiles: (dir: string) => string[];
}

export const realFiles: FileAccess = {
  readText: (p) => Deno.readTextFileSync(p),
  listFiles: (dir) =>
    [...Deno.readDirSync(dir)].filter((e) => e.isFile || e.isSymlink).map((e) =>
      `${dir.replace(/\/+$/, "")}/${e.name}`
    ).sort(),
};

/** Go's strconv.ParseBool, as consul's library reads its boolean variables. */
function envBool(env: Env, name: string): boolean | undefined {
  const v = env[name];
  if (v === undefined || v === "") return undefined;
  if (/^(1|t|true)$/i.test(v)) return true;
  if (/^(0|f|false)$/i.test(v)) return false;
  throw new UsageError(`invalid ${name} "${v}": expected true or false`);
}

function nonEmpty(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v === "" ? undefined : v;
}

/**
 * Pure apart from `files`: the connection for `httpAddr` (the flag or CONSUL_HTTP_ADDR, already
 * chosen by the config) and the environment. Throws UsageError naming the bad value.
 */
export function consulConnection(
  httpAddr: string,
  env: Env,
  files: FileAccess = realFiles,
): ConsulConnection {
  const ssl = envBool(env, "CONSUL_HTTP_SSL");
  const verify = envBool(env, "CONSUL_HTTP_SSL_VERIFY") ?? true;
  let conn: ConsulConnection;
  const unix = /^unix:\/\/(.*)$/i.exec(httpAddr.trim());
  if (unix) {
    const path = unix[1];
    if (!path.startsWith("/")) {
      throw new UsageError(
        `invalid consul address "${httpAddr}": expected unix:///absolute/path/to/socket`,
      );
    }
    const scheme = ssl ? "https" : "http";
    // the host only names the agent for TLS (consul's own library uses "localhost" too)
    conn = { label: `unix://${path}`, baseUrl: `${scheme}://localhost`, unixPath: path };
  } else {
    let text = httpAddr.trim();
    if (ssl && !/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(text)) text = `https://${text}`;
    let addr;
    try {
      addr = parseConsulAddress(text);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    conn = { label: addr.hostPort, baseUrl: addr.baseUrl };
  }
  if (conn.baseUrl.startsWith("https:")) conn.tls = tlsSettings(env, verify, files);
  const auth = nonEmpty(env, "CONSUL_HTTP_AUTH");
  if (auth !== undefined) {
    registerSecret(auth);
    registerSecret(auth.split(":").slice(1).join(":"));
    conn.basicAuth = auth;
  }
  const ns = nonEmpty(env, "CONSUL_NAMESPACE");
  if (ns !== undefined) {
    if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/.test(ns)) {
      throw new UsageError(
        `invalid CONSUL_NAMESPACE "${ns}": expected a namespace name (letters, digits, '-', '_')`,
      );
    }
    conn.namespace = ns;
  }
  return conn;
}

function tlsSettings(env: Env, verify: boolean, files: FileAccess): TlsSettings {
  const read = (path: string, from: string): string => {
    try {
      return files.readText(path);
    } catch (err) {
      throw new UsageError(`cannot read ${from} "${path}": ${(err as Error).message}`);
    }
  };
  const pem = (text: string, path: string, from: string, what: string): string => {
    if (
      !text.includes(`-----BEGIN ${what}`) &&
      !(what === "KEY" && /-----BEGIN [A-Z ]*KEY/.test(text))
    ) {
      throw new UsageError(`${from} "${path}" is not a PEM ${what.toLowerCase()}`);
    }
    return text;
  };
  const tls: TlsSettings = { verify };
  const caFile = nonEmpty(env, "CONSUL_CACERT");
  const caPath = nonEmpty(env, "CONSUL_CAPATH");
  if (caFile !== undefined) {
    tls.ca = [pem(read(caFile, "CONSUL_CACERT"), caFile, "CONSUL_CACERT", "CERTIFICATE")];
  } else if (caPath !== undefined) {
    let list: string[];
    try {
      list = files.listFiles(caPath);
    } catch (err) {
      throw new UsageError(`cannot read CONSUL_CAPATH "${caPath}": ${(err as Error).message}`);
    }
    // as consul's library (rootcerts.LoadCAPath): every file must hold certificates
    tls.ca = list.map((p) =>
      pem(read(p, "CONSUL_CAPATH file"), p, "CONSUL_CAPATH file", "CERTIFICATE")
    );
    if (tls.ca.length === 0) {
      throw new UsageError(`CONSUL_CAPATH "${caPath}" holds no CA certificate files`);
    }
  }
  const certFile = nonEmpty(env, "CONSUL_CLIENT_CERT");
  const keyFile = nonEmpty(env, "CONSUL_CLIENT_KEY");
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new UsageError(
      `${certFile ? "CONSUL_CLIENT_CERT" : "CONSUL_CLIENT_KEY"} is set without ${
        certFile ? "CONSUL_CLIENT_KEY" : "CONSUL_CLIENT_CERT"
      }: expected both (the client certificate and its key)`,
    );
  }
  if (certFile !== undefined && keyFile !== undefined) {
    tls.cert = pem(
      read(certFile, "CONSUL_CLIENT_CERT"),
      certFile,
      "CONSUL_CLIENT_CERT",
      "CERTIFICATE",
    );
    tls.key = pem(read(keyFile, "CONSUL_CLIENT_KEY"), keyFile, "CONSUL_CLIENT_KEY", "KEY");
  }
  const serverName = nonEmpty(env, "CONSUL_TLS_SERVER_NAME");
  if (serverName !== undefined) {
    if (!/^[A-Za-z0-9.-]{1,253}$/.test(serverName)) {
      throw new UsageError(`invalid CONSUL_TLS_SERVER_NAME "${serverName}": expected a host name`);
    }
    tls.serverName = serverName;
  }
  return tls;
}

/** The client for a connection. `fetch` is injectable (tests). */
export function clientFor(
  conn: ConsulConnection,
  opts: { token?: string; timeoutMs?: number; fetch?: typeof fetch } = {},
): ConsulClient {
  const headers: Record<string, string> = {};
  if (conn.basicAuth !== undefined) headers.Authorization = `Basic ${btoa(conn.basicAuth)}`;
  const needsNode = conn.unixPath !== undefined || conn.tls !== undefined;
  return new ConsulClient({
    baseUrl: conn.baseUrl,
    label: conn.label,
    token: opts.token,
    timeoutMs: opts.timeoutMs,
    headers,
    query: conn.namespace !== undefined ? { ns: conn.namespace } : undefined,
    fetch: opts.fetch ?? (needsNode ? nodeFetch(conn) : undefined),
  });
}

/** The consul client of every command: `httpAddr` and consul's environment variables. */
export function connectConsul(
  httpAddr: string,
  env: Env,
  opts: { token?: string; timeoutMs?: number; files?: FileAccess } = {},
): ConsulClient {
  return clientFor(consulConnection(httpAddr, env, opts.files), opts);
}

const NULL_BODY = new Set([101, 204, 205, 304]);

/**
 * A fetch over node:http / node:https for unix sockets and TLS settings: the request's URL
 * gives scheme, host, port and path; the connection gives the socket and TLS material. No
 * connection reuse (`agent: false`): every call is independent, as consul's calls are rare.
 */
export function nodeFetch(conn: Pick<ConsulConnection, "unixPath" | "tls">): typeof fetch {
  const tls = conn.tls;
  return (input: RequestInfo | URL, init: RequestInit = {}) =>
    new Promise<Response>((resolve, reject) => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      const signal = init.signal ?? undefined;
      if (signal?.aborted) return reject(signal.reason);
      const https_ = url.protocol === "https:";
      const headers: Record<string, string> = {};
      new Headers(init.headers).forEach((v, k) => headers[k] = v);
      const body = init.body as string | Uint8Array | undefined | null;
      if (body !== undefined && body !== null) {
        headers["content-length"] = String(
          typeof body === "string" ? new TextEncoder().encode(body).length : body.length,
        );
      }
      const options: https.RequestOptions = {
        method: init.method ?? "GET",
        path: url.pathname + url.search,
        headers,
        agent: false,
        ...(conn.unixPath !== undefined
          ? { socketPath: conn.unixPath }
          : { host: url.hostname.replace(/^\[|\]$/g, ""), port: Number(url.port) || undefined }),
        ...(https_ && tls
          ? {
            ca: tls.ca,
            cert: tls.cert,
            key: tls.key,
            servername: tls.serverName ?? (conn.unixPath !== undefined ? "localhost" : undefined),
            rejectUnauthorized: tls.verify,
          }
          : {}),
      };
      const onAbort = () => {
        req.destroy();
        reject(signal!.reason);
      };
      const req = (https_ ? https : http).request(options, (res) => {
        const chunks: Uint8Array[] = [];
        res.on("data", (c: Uint8Array) => chunks.push(c));
        res.on("error", (err) => reject(err));
        res.on("end", () => {
          signal?.removeEventListener("abort", onAbort);
          const status = res.statusCode ?? 0;
          const respHeaders = new Headers();
          for (const [k, v] of Object.entries(res.headers)) {
            if (v !== undefined) respHeaders.set(k, Array.isArray(v) ? v.join(", ") : v);
          }
          const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
          let at = 0;
          for (const c of chunks) {
            all.set(c, at);
            at += c.length;
          }
          resolve(
            new Response(NULL_BODY.has(status) ? null : all, { status, headers: respHeaders }),
          );
        });
      });
      req.on("error", (err) => {
        signal?.removeEventListener("abort", onAbort);
        reject(err);
      });
      signal?.addEventListener("abort", onAbort, { once: true });
      if (body !== undefined && body !== null) req.write(body);
      req.end();
    });
}
