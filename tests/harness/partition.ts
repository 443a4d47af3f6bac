/**
 * Network partitions between loopback addresses a test owns, with nftables: one table of the
 * test's own (`inet auto_consul_<pid>_<n>`) with an input-hook chain; a cut between two groups
 * of addresses is a pair of rules per address pair (`ip saddr A ip daddr B drop`, both ways).
 * Consul binds its RPC and gossip sockets to its `-bind` address, so a rule keyed on the two
 * agents' addresses cuts exactly their traffic; the run process still reaches its own agent's
 * HTTP API (it connects from 127.0.0.1).
 *
 *   await withPartitions(async (net) => {
 *     const cut = await net.cut([a.ip], [b.ip, c.ip]);
 *     ...
 *     await net.heal(cut);
 *   });
 *
 * Every table is deleted when `withPartitions` returns, also when the test failed; tables left
 * by a test process that was killed (named with its pid, no longer alive) are deleted at the
 * next start. Only addresses the caller passes are ever named in a rule.
 */

const PREFIX = "auto_consul_";
let seq = 0;

/** The nft binary, or undefined when nftables is not installed. */
export function nftBin(): string | undefined {
  for (const dir of ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]) {
    try {
      Deno.statSync(`${dir}/nft`);
      return `${dir}/nft`;
    } catch { /* next */ }
  }
  return undefined;
}

async function nft(args: string[], input?: string): Promise<string> {
  const bin = nftBin();
  if (!bin) {
    throw new Error("nft not found: install the nftables package (scripts/install-deps.sh)");
  }
  const cmd = new Deno.Command(bin, {
    args,
    stdin: input === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  });
  const child = cmd.spawn();
  if (input !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(input));
    await w.close();
  }
  const out = await child.output();
  if (!out.success) {
    throw new Error(`nft ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  return new TextDecoder().decode(out.stdout);
}

const IPV4_LOOPBACK = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function checkIp(ip: string): string {
  const m = IPV4_LOOPBACK.exec(ip);
  if (!m || m.slice(1).some((p) => Number(p) > 255)) {
    throw new RangeError(`partition address ${JSON.stringify(ip)}: expected a 127.x.y.z address`);
  }
  return ip;
}

/** One cut: the rule handles that make it, for `heal`. */
export interface Cut {
  readonly a: readonly string[];
  readonly b: readonly string[];
  readonly handles: readonly number[];
}

/** Partitions of one test: a table of its own. */
export class Partitions {
  readonly table: string;
  readonly #cuts = new Set<Cut>();

  constructor(table: string) {
    this.table = table;
  }

  /** Drops all traffic between every address of `a` and every address of `b`, both ways. */
  async cut(a: readonly string[], b: readonly string[]): Promise<Cut> {
    a.forEach(checkIp);
    b.forEach(checkIp);
    const handles: number[] = [];
    for (const x of a) {
      for (const y of b) {
        for (const [s, d] of [[x, y], [y, x]]) {
          handles.push(await this.#rule(["ip", "saddr", s, "ip", "daddr", d, "drop"]));
        }
      }
    }
    const cut: Cut = { a: [...a], b: [...b], handles };
    this.#cuts.add(cut);
    return cut;
  }

  /**
   * Drops every packet to or from `ip` (an address the test listens on, e.g. a forwarder in
   * front of the S3 server that one node uses): that node loses the registry, nobody else does.
   */
  async blackhole(ip: string): Promise<Cut> {
    checkIp(ip);
    const handles: number[] = [];
    for (const dir of ["daddr", "saddr"]) {
      handles.push(await this.#rule(["ip", dir, ip, "drop"]));
    }
    const cut: Cut = { a: [ip], b: [], handles };
    this.#cuts.add(cut);
    return cut;
  }

  async #rule(match: string[]): Promise<number> {
    const out = await nft([
      "--echo",
      "--handle",
      "add",
      "rule",
      "inet",
      this.table,
      "input",
      ...match,
    ]);
    const m = /# handle (\d+)/.exec(out);
    if (!m) throw new Error(`nft did not report a rule handle: ${out.trim()}`);
    return Number(m[1]);
  }

  /**
   * Isolates `ip` from everything but the HTTP API on its port 8500 (where its own run process
   * and the test talk to it): every other packet to or from it is dropped. Consul's gossip may
   * fall back to TCP connections that the kernel sources from 127.0.0.1, which a pair rule
   * cannot name; so TCP from 127.0.0.1 to the consul ports (8300-8302) of `ip` and of `others`
   * is dropped as well (UDP gossip between the others goes on).
   */
  async isolate(ip: string, others: readonly string[]): Promise<Cut> {
    checkIp(ip);
    others.forEach(checkIp);
    const rest = others.filter((o) => o !== ip);
    const handles = [
      await this.#rule(["ip", "daddr", ip, "tcp", "dport", "!=", "8500", "drop"]),
      await this.#rule(["ip", "daddr", ip, "meta", "l4proto", "!=", "tcp", "drop"]),
      await this.#rule(["ip", "saddr", ip, "tcp", "sport", "!=", "8500", "drop"]),
      await this.#rule(["ip", "saddr", ip, "meta", "l4proto", "!=", "tcp", "drop"]),
    ];
    for (const o of [ip, ...rest]) {
      handles.push(
        await this.#rule([
          "ip",
          "saddr",
          "127.0.0.1",
          "ip",
          "daddr",
          o,
          "tcp",
          "dport",
          "8300-8302",
          "drop",
        ]),
      );
    }
    const cut: Cut = { a: [ip], b: rest, handles };
    this.#cuts.add(cut);
    return cut;
  }

  /** Removes the rules of one cut. */
  async heal(cut: Cut): Promise<void> {
    for (const h of cut.handles) {
      await nft(["delete", "rule", "inet", this.table, "input", "handle", String(h)]);
    }
    this.#cuts.delete(cut);
  }

  /** Removes every cut of this table. */
  async healAll(): Promise<void> {
    await nft(["flush", "chain", "inet", this.table, "input"]);
    this.#cuts.clear();
  }

  /** The number of rules in force (for tests of the harness itself). */
  async ruleCount(): Promise<number> {
    const out = await nft(["list", "chain", "inet", this.table, "input"]);
    return out.split("\n").filter((l) => /\bdrop\b/.test(l)).length;
  }
}

/** Deletes tables of this harness whose test process is gone. */
async function sweepLeftovers(): Promise<void> {
  const out = await nft(["list", "tables"]).catch(() => "");
  for (const line of out.split("\n")) {
    const m = new RegExp(`^table inet (${PREFIX}(\\d+)_[0-9a-f]+)$`).exec(line.trim());
    if (!m) continue;
    const pid = Number(m[2]);
    let alive = true;
    try {
      Deno.statSync(`/proc/${pid}`);
    } catch {
      alive = false;
    }
    if (!alive) await nft(["delete", "table", "inet", m[1]]).catch(() => {});
  }
}

/** Runs `fn` with a fresh table; the table (and so every cut) is deleted whatever happens. */
export async function withPartitions<T>(fn: (net: Partitions) => Promise<T>): Promise<T> {
  await sweepLeftovers();
  // Test files run as workers of one process (deno test --parallel): same pid, separate
  // module state, so the name carries a random part as well.
  const table = `${PREFIX}${Deno.pid}_${++seq}${crypto.randomUUID().replace(/-/g, "").slice(0, 8)}`;
  await nft(
    ["-f", "-"],
    `table inet ${table} {\n  chain input {\n    type filter hook input priority 0; policy accept;\n  }\n}\n`,
  );
  try {
    return await fn(new Partitions(table));
  } finally {
    await nft(["delete", "table", "inet", table]).catch(() => {});
  }
}

/** Whether a table of this name exists (for tests of the harness itself). */
export async function tableExists(table: string): Promise<boolean> {
  const out = await nft(["list", "tables"]);
  return out.split("\n").some((l) => l.trim() === `table inet ${table}`);
}

/**
 * A TCP forwarder on `listenIp` (a free port) to `target` ("host:port"), so that one node's
 * path to a shared server has an address of its own to cut. Closed by `close()`.
 */
export function startForwarder(
  listenIp: string,
  target: { hostname: string; port: number },
): { port: number; close: () => void } {
  const listener = Deno.listen({ hostname: checkIp(listenIp), port: 0 });
  const conns = new Set<Deno.Conn>();
  (async () => {
    for await (const inbound of listener) {
      conns.add(inbound);
      Deno.connect(target).then((outbound) => {
        conns.add(outbound);
        const done = () => {
          for (const c of [inbound, outbound]) {
            conns.delete(c);
            try {
              c.close();
            } catch { /* closed */ }
          }
        };
        Promise.allSettled([
          inbound.readable.pipeTo(outbound.writable),
          outbound.readable.pipeTo(inbound.writable),
        ]).then(done);
      }, () => {
        conns.delete(inbound);
        try {
          inbound.close();
        } catch { /* closed */ }
      });
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    close: () => {
      try {
        listener.close();
      } catch { /* closed */ }
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
    },
  };
}
