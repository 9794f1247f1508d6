import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, expect, it } from 'vitest';

import { NatsKvStore } from '../../runtime/kv/nats.js';
import { NatsTransport } from '../../runtime/transport/nats.js';
import { kvConformance } from '../helpers/kv-conformance.js';
import { describeIntegration } from '../helpers/require-services.js';
import { startNatsServer, type NatsServerHandle } from '../helpers/servers.js';

describeIntegration('NatsKvStore', () => {
  let server: NatsServerHandle;

  beforeAll(async () => {
    server = await startNatsServer({ jetstream: true });
  });

  afterAll(async () => {
    await server.stop();
  });

  kvConformance('nats', async () => {
    const nc: NatsConnection = await connect({ servers: server.url });
    return { store: new NatsKvStore(nc), cleanup: () => nc.close() };
  });

  it('keeps file-backed buckets across a server restart', async () => {
    const transport = await NatsTransport.connect({
      servers: server.url,
      reconnectTimeWaitMs: 100,
    });
    try {
      const reconnected = new Promise<void>((resolve) =>
        transport.onStatus((s) => s === 'reconnected' && resolve()),
      );
      const bucket = await new NatsKvStore(transport.connection).bucket('durable', {
        ttlMs: 60_000,
        storage: 'file',
      });
      const rev = await bucket.put('k', new TextEncoder().encode('v'));
      await server.restart();
      // Requests sent while disconnected are lost, not replayed: wait for the reconnect.
      await reconnected;
      const again = await new NatsKvStore(transport.connection).bucket('durable', {
        ttlMs: 60_000,
      });
      expect((await again.get('k'))?.revision).toBe(rev);
    } finally {
      await transport.close();
    }
  });
});
