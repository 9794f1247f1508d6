import { afterAll, beforeAll, expect, it } from 'vitest';
import { actorSuite } from '../helpers/actor-suite.js';
import { testCluster, uniquePrefix } from '../helpers/cluster.js';
import { describeIntegration } from '../helpers/require-services.js';
import { startNatsServer } from '../helpers/servers.js';
import type { NatsServerHandle } from '../helpers/servers.js';
import { echoKind } from '../helpers/test-kinds.js';
import type { EchoProtocol } from '../helpers/test-kinds.js';

describeIntegration('actor runtime over NATS', () => {
  let server: NatsServerHandle;
  beforeAll(async () => {
    server = await startNatsServer();
  });
  afterAll(async () => {
    await server.stop();
  });
  // The tests share one server and one prefix: each closes its nodes, and a graceful stop deletes
  // a node's leases and membership, so no test sees another's hosts.
  actorSuite('NATS', () => Promise.resolve(testCluster(server.url)));

  it("serves a group with a replica in the caller's process there, unless told not to", async () => {
    const cluster = testCluster(server.url, { prefix: uniquePrefix('local') });
    try {
      const replica = (id: string, localRequests: boolean) =>
        cluster.node([echoKind()], {
          host: { id, groups: { echo: ['0'] } },
          nats: { local_requests: localRequests },
        });
      const near = await replica('near', true);
      const spread = await replica('spread', false);
      const hostsAskedBy = async (node: typeof near): Promise<Set<string>> => {
        const echo = node.client.grouped<EchoProtocol>('echo');
        const hosts = await Promise.all(
          Array.from(
            { length: 40 },
            async (_, i) => (await echo.ask('0', 'echo', { text: `${i}` })).host,
          ),
        );
        return new Set(hosts);
      };
      expect(await hostsAskedBy(near)).toEqual(new Set(['near']));
      expect(await hostsAskedBy(spread)).toEqual(new Set(['near', 'spread']));
    } finally {
      await cluster.close();
    }
  });
});
