import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll } from 'vitest';

import { NatsStreamStore } from '../../runtime/stream/index.js';
import { eventsConsumerSuite } from '../helpers/events-consumer-suite.js';
import { describeIntegration } from '../helpers/require-services.js';
import { startNatsServer, type NatsServerHandle } from '../helpers/servers.js';

describeIntegration('events consumer on JetStream', () => {
  let server: NatsServerHandle;

  beforeAll(async () => {
    server = await startNatsServer({ jetstream: true });
  });

  afterAll(async () => {
    await server.stop();
  });

  eventsConsumerSuite('nats', () => {
    const connections: NatsConnection[] = [];
    return Promise.resolve({
      async client() {
        const nc = await connect({ servers: server.url });
        connections.push(nc);
        return {
          store: new NatsStreamStore(nc),
          // The connection goes with the batch unacknowledged: the server delivers it again.
          crash: () => nc.close(),
        };
      },
      async cleanup() {
        await Promise.all(connections.splice(0).map((nc) => nc.close()));
      },
    });
  });
});
