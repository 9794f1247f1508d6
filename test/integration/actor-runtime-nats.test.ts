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
  // Every test gets its own subject prefix? No: each test closes its nodes, and leases and members
  // of a closed node are deleted on graceful stop, so tests do not see each other's hosts.
  actorSuite('NATS', () => Promise.resolve(testCluster(server.url)));
});
