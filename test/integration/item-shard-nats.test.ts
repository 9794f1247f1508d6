import { afterAll, beforeAll } from 'vitest';
import { testCluster } from '../helpers/cluster.js';
import { itemShardSuite } from '../helpers/item-shard-suite.js';
import { describeIntegration } from '../helpers/require-services.js';
import { startNatsServer } from '../helpers/servers.js';
import type { NatsServerHandle } from '../helpers/servers.js';

describeIntegration('item-shard actors over NATS', () => {
  let server: NatsServerHandle;
  beforeAll(async () => {
    server = await startNatsServer();
  });
  afterAll(async () => {
    await server.stop();
  });
  itemShardSuite('NATS', (options) => Promise.resolve(testCluster(server.url, options)));
});
