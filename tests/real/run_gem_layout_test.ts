/**
 * The gem's local layout and the user's consul config (issue 11, acceptance 2 and 3), with
 * real `auto-consul run` processes and real consul agents:
 * - a `client_addr` in a `-c` config dir is where consul listens (run passes no `-client`
 *   unless `--client` is given, and talks to the agent at `--http-addr`);
 * - a client upgraded from an earlier auto-consul's `<data-dir>/client` keeps its consul node
 *   ID: the folder is moved once to the gem's `<data-dir>/agent`, with a log line.
 */
import assert from "node:assert/strict";
import { waitForCluster } from "../harness/cluster_view.ts";
import { withNodes } from "../harness/nodes.ts";

Deno.test("client_addr from -c is where consul listens; an old <data-dir>/client keeps its node ID", () =>
  withNodes(async (nodes) => {
    const registry = `file://${await nodes.dir("registry")}`;
    const server = nodes.create({ registry, servers: 1, prefix: "server" });
    server.start();

    // The client: its consul config says client_addr = its own address (no --client given).
    const configDir = await nodes.dir("consul-config");
    const client = nodes.create({
      registry,
      servers: 1,
      prefix: "client",
      noClientFlag: true,
      flags: ["-c", configDir],
    });
    await Deno.writeTextFile(
      `${configDir}/listen.json`,
      JSON.stringify({ client_addr: client.ip }),
    );
    // ... and its data dir as an earlier auto-consul left it: consul data in client/, the
    // mode decided then (with a newline), a node ID consul wrote there.
    const nodeId = crypto.randomUUID();
    await Deno.mkdir(`${client.dataDir}/client`, { recursive: true });
    await Deno.writeTextFile(`${client.dataDir}/client/node-id`, nodeId);
    await Deno.writeTextFile(`${client.dataDir}/mode`, "agent\n");
    await waitForCluster([server], { servers: 1, clients: 0 });
    client.start();

    const view = await waitForCluster([server, client], { servers: 1, clients: 1 });
    assert.deepEqual(view.clients.map((n) => n.name), [client.name]);

    // consul listens where the config dir says (client.client talks to IP:8500) ...
    const self = await client.client.self();
    assert.equal(self.node, client.name);
    // ... and was given no -client
    const pid = await client.consulPid();
    assert.ok(pid !== undefined, "the client's consul runs");
    const argv = (await Deno.readTextFile(`/proc/${pid}/cmdline`)).split("\0");
    assert.equal(argv.filter((a) => a.startsWith("-client")).length, 0, argv.join(" "));
    assert.ok(argv.includes(`-config-dir=${configDir}`), argv.join(" "));
    assert.ok(argv.includes(`-data-dir=${client.dataDir}/agent`), argv.join(" "));

    // the node ID survived the move to the gem's layout
    assert.equal(self.nodeId, nodeId);
    assert.equal((await Deno.readTextFile(`${client.dataDir}/agent/node-id`)).trim(), nodeId);
    await assert.rejects(Deno.stat(`${client.dataDir}/client`), Deno.errors.NotFound);
    const moved = client.logged(/^moved consul's client data to the gem's layout/);
    assert.equal(moved.length, 1, client.tail());
    assert.equal(moved[0].to, `${client.dataDir}/agent`);
    // the mode file is rewritten in the gem's bytes
    assert.equal(await Deno.readTextFile(`${client.dataDir}/mode`), "agent");
  }));
