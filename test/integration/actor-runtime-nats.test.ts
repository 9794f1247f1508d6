import { afterAll, beforeAll } from 'vitest';
import { actorSuite } from '../helpers/actor-suite.js';
import { testCluster } from '../helpers/cluster.js';
import { describeIntegration } from '../helpers/require-services.js';
import { startNatsServer } from '../helpers/servers.js';
import type { NatsServerHandle } from '../helpers/servers.js';

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
});
