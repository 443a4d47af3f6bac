/**
 * A scripted consul for unit tests of a node's life: `spawn` starts fake agent processes
 * (recorded with their argv), and `client` answers like the running agent's HTTP API — only
 * while a process runs. The members other agents see are the test's to script.
 */
import type {
  AgentSelf,
  CatalogNode,
  RaftConfiguration,
  SerfMember,
} from "../../src/consul/types.ts";
import type { ExitStatus, LineHandler } from "../../src/consul/process.ts";
import type { NodeConsul } from "../../src/cluster/node_options.ts";
import { ConsulUnreachableError } from "../../src/errors.ts";

export class FakeAgent implements NodeConsul {
  readonly killedWith: Deno.Signal[] = [];
  readonly status: Promise<ExitStatus>;
  #exit!: (s: ExitStatus) => void;
  exited = false;

  constructor(
    readonly pid: number,
    readonly args: readonly string[],
    private readonly codeOnSignal: (sig: Deno.Signal) => number,
  ) {
    this.status = new Promise((resolve) => this.#exit = resolve);
  }

  get isServer(): boolean {
    return this.args.includes("-server");
  }

  /** Exits on its own (a crash when the node did not ask). */
  exit(code: number, signal: Deno.Signal | null = null): void {
    if (this.exited) return;
    this.exited = true;
    this.#exit({ code, signal });
  }

  /** While true, a signal but SIGKILL is recorded and the agent goes on (a slow stop). */
  holdExit = false;

  kill(sig: Deno.Signal): void {
    if (this.exited) return;
    this.killedWith.push(sig);
    if (!this.holdExit || sig === "SIGKILL") this.exit(this.codeOnSignal(sig));
  }

  tail(): string[] {
    return [`fake consul ${this.pid}`];
  }
}

export function serverMember(name: string, addr: string, status = "alive"): SerfMember {
  return {
    name,
    addr,
    port: 8301,
    status: status as SerfMember["status"],
    statusCode: 1,
    isServer: true,
    tags: {},
  };
}

export class ConsulWorld {
  readonly agents: FakeAgent[] = [];
  /** Other agents as this one sees them (servers of the cluster). */
  others: SerfMember[] = [];
  readonly joins: string[] = [];
  #pid = 1000;

  constructor(
    readonly node: string,
    readonly address: string,
    /** Exit code of an agent stopped by a signal. */
    readonly codeOnSignal: (sig: Deno.Signal) => number = () => 0,
  ) {}

  get running(): FakeAgent | undefined {
    const last = this.agents.at(-1);
    return last && !last.exited ? last : undefined;
  }

  spawn = (args: readonly string[], _onLine: LineHandler): Promise<NodeConsul> => {
    if (this.running) throw new Error("test: a second agent started while one runs");
    const agent = new FakeAgent(++this.#pid, args, this.codeOnSignal);
    agent.holdExit = this.holdExit;
    this.agents.push(agent);
    return Promise.resolve(agent);
  };

  /** Agents started while true stop only when the test says (`FakeAgent.holdExit`). */
  holdExit = false;

  /** While true, a running agent does not answer yet (a slow start on a loaded machine). */
  silent = false;

  #answering(): FakeAgent {
    const a = this.running;
    if (!a) throw new ConsulUnreachableError("consul agent is not running (test)");
    if (this.silent) throw new ConsulUnreachableError("consul agent does not answer yet (test)");
    return a;
  }

  #members(): SerfMember[] {
    const a = this.#answering();
    const me: SerfMember = { ...serverMember(this.node, this.address), isServer: a.isServer };
    return [me, ...this.others];
  }

  /** Graceful leaves asked of this agent. */
  leaves = 0;

  client = {
    self: (): Promise<AgentSelf> =>
      Promise.resolve().then(() => {
        const a = this.#answering();
        return {
          node: this.node,
          nodeId: "00000000-0000-0000-0000-000000000000",
          datacenter: "dc1",
          version: "1.8.7",
          isServer: a.isServer,
          memberAddr: this.address,
          memberPort: 8301,
          raw: {},
        };
      }),
    members: (): Promise<SerfMember[]> => Promise.resolve().then(() => this.#members()),
    leader: (): Promise<string> =>
      Promise.resolve().then(() => {
        const servers = this.#members().filter((m) => m.isServer && m.status === "alive");
        return servers.length > 0 ? `${servers[0].addr}:8300` : "";
      }),
    join: (addr: string): Promise<void> =>
      Promise.resolve().then(() => {
        this.#answering();
        this.joins.push(addr);
      }),
    /** A graceful leave (a server stepping down leaves raft first): counted. */
    leave: (): Promise<void> =>
      Promise.resolve().then(() => {
        this.#answering();
        this.leaves++;
      }),
    /**
     * The raft configuration as this agent reads it: `raftVoters` (the test's), and itself as
     * a voter when it is a server.
     */
    raftConfiguration: (): Promise<RaftConfiguration> =>
      Promise.resolve().then(() => {
        const a = this.#answering();
        const self = a.isServer
          ? [{
            id: "00000000-0000-0000-0000-000000000000",
            node: this.node,
            address: `${this.address}:8300`,
            leader: false,
            voter: true,
            protocolVersion: "3",
          }]
          : [];
        const others = this.raftVoters.map((v) => ({
          ...v,
          leader: false,
          voter: true,
          protocolVersion: "3",
        }));
        return { servers: [...others, ...self], index: 1 };
      }),
    /** Removes a voter of `raftVoters`; recorded with the agents started so far. */
    raftRemovePeer: (id: string): Promise<void> =>
      Promise.resolve().then(() => {
        const a = this.#answering();
        this.removedPeers.push({ id, agents: this.agents.length, byServer: a.isServer });
        this.raftVoters = this.raftVoters.filter((v) => v.id !== id);
      }),
    /** No catalog entry: nothing stale to remove. */
    catalogNode: (): Promise<CatalogNode | undefined> =>
      Promise.resolve().then(() => {
        this.#answering();
        return undefined;
      }),
    catalogDeregister: (): Promise<void> =>
      Promise.reject(new Error("the fake catalog has nothing to deregister")),
  };

  /** Other voters of the raft configuration (the test's to script). */
  raftVoters: { id: string; node: string; address: string }[] = [];
  /** Raft peers removed through this agent, with how many agents had been started then. */
  readonly removedPeers: { id: string; agents: number; byServer: boolean }[] = [];
}
