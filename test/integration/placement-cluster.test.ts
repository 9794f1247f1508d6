/**
 * Several host processes sharing the partitions of a keyed kind over a real nats-server: one owner
 * per partition at every instant, takeover after a crash within two lease periods, minimal movement
 * on join, every ask of a running stream answered exactly once, recovery from a server restart.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ActorClient } from '../../runtime/client/client.js';
import { partitionOf, rendezvousOwner } from '../../runtime/placement/hash.js';
import { discoverServices } from '../../runtime/services/discover.js';
import { NatsTransport } from '../../runtime/transport/nats.js';
import { FAST_PLACEMENT } from '../helpers/cluster.js';
import { eventually } from '../helpers/eventually.js';
import { ownershipIntervals, overlaps, spawnHost, writeConfig } from '../helpers/host-process.js';
import type { HostProcess, OwnershipEvent } from '../helpers/host-process.js';
import { describeIntegration } from '../helpers/require-services.js';
import { startNatsServer } from '../helpers/servers.js';
import type { NatsServerHandle } from '../helpers/servers.js';
import type { CounterProtocol } from '../helpers/test-kinds.js';

const PARTITIONS = 64;
const LEASE_TTL = FAST_PLACEMENT.lease_ttl_ms;
const KINDS_MODULE = new URL('../helpers/counter-kinds-module.ts', import.meta.url).pathname;

describeIntegration('placement across host processes', () => {
  let server: NatsServerHandle;
  let configPath: string;
  let transport: NatsTransport;
  let client: ActorClient;
  const events: OwnershipEvent[] = [];
  const hosts = new Map<string, HostProcess>();
  const deaths = new Map<string, number>();
  let outage: { from: number; to: number } | undefined;

  const owners = (): Map<number, string[]> => {
    const intervals = ownershipIntervals(events, 'counter', deaths, Number.MAX_SAFE_INTEGER);
    const current = new Map<number, string[]>();
    for (const [partition, list] of intervals) {
      current.set(
        partition,
        list.filter((i) => i.end === Number.MAX_SAFE_INTEGER).map((i) => i.host),
      );
    }
    return current;
  };
  const ownedBy = (host: string): number[] =>
    [...owners()].filter(([, hs]) => hs.includes(host)).map(([p]) => p);
  const allOwnedOnce = (): boolean => {
    const current = owners();
    return current.size === PARTITIONS && [...current.values()].every((hs) => hs.length === 1);
  };
  const start = async (id: string): Promise<HostProcess> => {
    const host = spawnHost({ id, configPath, kindsModule: KINDS_MODULE, events });
    hosts.set(id, host);
    await host.ready;
    return host;
  };
  const counters = () => client.keyed<CounterProtocol>('counter');

  beforeAll(async () => {
    server = await startNatsServer();
    configPath = writeConfig({
      deployment: { prefix: 'ct', transport: 'nats' },
      nats: { url: server.url, reconnect_wait_ms: 100 },
      runtime: { partitions: PARTITIONS, drain_timeout_ms: 2000 },
      placement: FAST_PLACEMENT,
      host: { groups: { echo: ['0'] } },
      log: { level: 'info' },
      metrics: { default_metrics: false, port: 0 },
    });
    transport = await NatsTransport.connect({ servers: server.url, reconnectTimeWaitMs: 100 });
    client = new ActorClient({
      transport,
      prefix: 'ct',
      partitions: PARTITIONS,
      defaultTimeoutMs: 3000,
    });
    await Promise.all(['h1', 'h2', 'h3'].map(start));
  });

  afterAll(async () => {
    if (process.env['DEBUG_HOSTS'] !== undefined) {
      for (const host of hosts.values()) {
        for (const line of host.lines)
          if (Number(line['level']) >= 40)
            console.log(
              host.id,
              line['time'],
              line['msg'],
              JSON.stringify(line['err']).slice(0, 600),
            );
      }
    }
    await Promise.all([...hosts.values()].map((h) => h.kill('SIGKILL')));
    await transport?.close();
    await server?.stop();
  });

  it('three hosts share 64 partitions, each with exactly one owner', async () => {
    await eventually(allOwnedOnce, { timeoutMs: 20_000, message: 'every partition owned once' });
    for (const id of ['h1', 'h2', 'h3']) expect(ownedBy(id).length).toBeGreaterThan(5);
    // Placement follows rendezvous hashing over the live hosts.
    for (const [partition, [host]] of owners()) {
      expect(host).toBe(rendezvousOwner(`counter.${partition}`, ['h1', 'h2', 'h3']));
    }
  });

  it('$SRV.PING, $SRV.INFO and $SRV.STATS show every host with its stats', async () => {
    const pings = await discoverServices(transport, 'PING', { name: 'ct-counter' });
    expect(pings.map((p) => p.metadata?.['host']).sort()).toEqual(['h1', 'h2', 'h3']);
    const infos = await discoverServices(transport, 'INFO', { name: 'ct-echo' });
    expect(infos.map((i) => i.metadata?.['host']).sort()).toEqual(['h1', 'h2', 'h3']);
    expect(infos[0]?.endpoints.map((e) => e.name).sort()).toEqual(['echo', 'sum']);
    const stats = await discoverServices(transport, 'STATS', { name: 'ct-counter' });
    const owned = stats.map(
      (s) => (s.endpoints[0]?.data as { partitions_owned: number }).partitions_owned,
    );
    expect(owned.reduce((a, b) => a + b, 0)).toBe(PARTITIONS);
  });

  it('a host joins: only its partitions move, and a stream of asks gets every answer exactly once', async () => {
    const keys = Array.from({ length: 200 }, (_, i) => `user-${i}`);
    const sent = new Map<string, number>();
    const failures: unknown[] = [];
    let running = true;
    const worker = async (w: number): Promise<void> => {
      for (let i = w; running; i += 8) {
        const key = keys[i % keys.length]!;
        try {
          await counters().ask(key, 'add', { amount: 1 }, { timeoutMs: 4000 });
          sent.set(key, (sent.get(key) ?? 0) + 1);
        } catch (err) {
          failures.push(err);
        }
      }
    };
    const stream = Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)));
    await eventually(() => [...sent.values()].reduce((a, b) => a + b, 0) > 200, {
      timeoutMs: 10_000,
    });

    const before = owners();
    await start('h4');
    const expected = [...before.keys()].filter(
      (p) => rendezvousOwner(`counter.${p}`, ['h1', 'h2', 'h3', 'h4']) === 'h4',
    );
    await eventually(() => ownedBy('h4').length === expected.length && allOwnedOnce(), {
      timeoutMs: 20_000,
      message: 'h4 owns its share',
    });
    // Let the stream run across the settled cluster for a moment, then stop it.
    await new Promise((resolve) => setTimeout(resolve, 500));
    running = false;
    await stream;

    const after = owners();
    const moved = [...after].filter(([p, [host]]) => before.get(p)?.[0] !== host).map(([p]) => p);
    expect(moved.sort((a, b) => a - b)).toEqual(expected.sort((a, b) => a - b));
    expect(failures).toEqual([]);
    // Each key's total equals the adds that were answered: nothing lost, nothing applied twice.
    for (const key of keys) {
      const { total } = await counters().ask(key, 'get', {});
      expect(total, key).toBe(sent.get(key) ?? 0);
    }
  });

  it('kill -9 of a host: its partitions are owned again within two lease periods', async () => {
    const victim = 'h2';
    const orphaned = ownedBy(victim);
    expect(orphaned.length).toBeGreaterThan(0);
    deaths.set(victim, await hosts.get(victim)!.kill('SIGKILL'));
    await eventually(allOwnedOnce, {
      timeoutMs: 4 * LEASE_TTL,
      message: 'orphaned partitions taken over',
    });
    const death = deaths.get(victim)!;
    for (const partition of orphaned) {
      const takeover = events.find(
        (e) => e.partition === partition && e.evt === 'partition_acquired' && e.at >= death,
      );
      expect(takeover, `partition ${partition}`).toBeDefined();
      expect(takeover!.at - death).toBeLessThanOrEqual(2 * LEASE_TTL);
    }
    const key = Array.from({ length: 500 }, (_, i) => `k${i}`).find((k) =>
      orphaned.includes(partitionOf(k, PARTITIONS)),
    )!;
    await expect(counters().ask(key, 'add', { amount: 1 })).resolves.toMatchObject({ total: 1 });
  });

  it('graceful shutdown releases leases at once', async () => {
    const leaving = 'h3';
    const owned = ownedBy(leaving);
    const signalled = Date.now();
    const host = hosts.get(leaving)!;
    await host.kill('SIGTERM');
    expect(await host.exited).toBe(0);
    deaths.set(leaving, Date.now());
    await eventually(allOwnedOnce, {
      timeoutMs: 2 * LEASE_TTL,
      message: 'released partitions taken over',
    });
    for (const partition of owned) {
      const takeover = events.find(
        (e) =>
          e.partition === partition &&
          e.evt === 'partition_acquired' &&
          e.host !== leaving &&
          e.at >= signalled,
      );
      // Well inside one lease period: the next owner did not wait for an expiry.
      expect(takeover!.at - signalled, `partition ${partition}`).toBeLessThan(LEASE_TTL);
    }
  });

  it('nats-server restarted: hosts reconnect and resume', async () => {
    const from = Date.now();
    await server.kill();
    await server.restart();
    outage = { from, to: Date.now() };
    await eventually(
      async () =>
        (await counters().ask('after-restart', 'add', { amount: 1 }, { timeoutMs: 1000 })).total >=
        1,
      { timeoutMs: 6 * LEASE_TTL, message: 'asks succeed after the restart' },
    );
    await eventually(allOwnedOnce, {
      timeoutMs: 6 * LEASE_TTL,
      message: 'all partitions owned after restart',
    });
  });

  it('no partition ever had two owners, and none was ownerless beyond two lease periods', () => {
    const intervals = ownershipIntervals(events, 'counter', deaths);
    expect(overlaps(intervals)).toEqual([]);
    const gaps: string[] = [];
    for (const [partition, list] of intervals) {
      for (let i = 1; i < list.length; i++) {
        const from = list[i - 1]!.end;
        const to = list[i]!.start;
        const duringOutage =
          outage !== undefined && from <= outage.to + 2 * LEASE_TTL && to >= outage.from;
        if (!duringOutage && to - from > 2 * LEASE_TTL)
          gaps.push(`partition ${partition}: ${to - from} ms`);
      }
    }
    expect(gaps).toEqual([]);
  });
});
