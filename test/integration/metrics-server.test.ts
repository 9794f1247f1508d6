import { afterEach, describe, expect, it } from 'vitest';
import { startMetricsServer } from '../../runtime/metrics-server.js';
import type { MetricsServer } from '../../runtime/metrics-server.js';
import type { RunningNode } from '../../runtime/node.js';
import { testCluster } from '../helpers/cluster.js';
import { counterKind } from '../helpers/test-kinds.js';
import type { CounterProtocol } from '../helpers/test-kinds.js';

describe('the /metrics endpoint of a node', () => {
  const cluster = testCluster(undefined);
  let server: MetricsServer | undefined;
  let node: RunningNode;

  afterEach(async () => {
    await server?.close();
    await cluster.close();
  });

  it('serves the runtime metrics for Prometheus and a health check', async () => {
    node = await cluster.node([counterKind()], { runtime: { partitions: 8 } });
    server = await startMetricsServer({
      metrics: node.metrics,
      port: 0,
      host: '127.0.0.1',
      healthy: () => true,
    });
    await node.client.keyed<CounterProtocol>('counter').ask('m', 'add', { amount: 1 });
    const base = `http://127.0.0.1:${server.port}`;

    const metrics = await fetch(`${base}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toContain('text/plain');
    const text = await metrics.text();
    expect(text).toContain('recsys_actor_messages_total{kind="counter",op="add",outcome="ok"} 1');
    expect(text).toContain(
      'recsys_actor_handler_duration_seconds_count{kind="counter",op="add"} 1',
    );
    expect(text).toContain('recsys_actor_active{kind="counter"} 1');
    expect(text).toContain('recsys_placement_partitions_owned{kind="counter"} 8');
    expect(text).toContain('recsys_actor_activations_total{kind="counter"} 1');

    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    expect((await fetch(`${base}/metrics`, { method: 'POST' })).status).toBe(405);
  });
});
