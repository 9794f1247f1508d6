/**
 * The actor-level suite, written once and run on both transports: what an actor kind can rely on
 * from the runtime, seen through the client API every caller uses.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  BadRequestError,
  InternalError,
  NoRespondersError,
  OverloadedError,
  TimeoutError,
  UnknownOpError,
} from '../../runtime/errors.js';
import { encode } from '../../runtime/codec.js';
import { discoverServices } from '../../runtime/services/discover.js';
import { decodeReply, Header } from '../../runtime/wire.js';
import type { RunningNode } from '../../runtime/node.js';
import type { TestCluster } from './cluster.js';
import { eventually } from './eventually.js';
import { counterKind, echoKind, memoryCounterStore } from './test-kinds.js';
import type { CounterProtocol, EchoProtocol } from './test-kinds.js';

export function actorSuite(
  name: string,
  makeCluster: (options?: { shared?: boolean }) => Promise<TestCluster>,
): void {
  describe(`actor runtime on ${name}`, () => {
    let cluster: TestCluster | undefined;
    const open = async (options?: { shared?: boolean }): Promise<TestCluster> => {
      cluster = await makeCluster(options);
      return cluster;
    };
    afterEach(async () => {
      await cluster?.close();
      cluster = undefined;
    });

    const groups = { host: { groups: { echo: ['0', '1'] } } };

    it('asks a keyed actor and keeps its state between messages', async () => {
      const c = await open();
      const node = await c.node([counterKind(), echoKind()], groups);
      const counters = node.client.keyed<CounterProtocol>('counter');
      await counters.ask('alice', 'add', { amount: 2 });
      const reply = await counters.ask('alice', 'add', { amount: 3 });
      expect(reply).toEqual({ total: 5, host: node.hostId });
      expect(await counters.ask('bob', 'get', {})).toMatchObject({ total: 0, activations: 1 });
      // Keys that need encoding reach the same actor every time.
      await counters.ask('a.b *>', 'add', { amount: 1 });
      expect((await counters.ask('a.b *>', 'get', {})).total).toBe(1);
    });

    it('answers grouped calls, with vectors as bytes', async () => {
      const c = await open();
      const node = await c.node([echoKind()], groups);
      const echo = node.client.grouped<EchoProtocol>('echo');
      expect(await echo.ask('1', 'echo', { text: 'hi' })).toEqual({
        text: 'hi',
        host: node.hostId,
        group: '1',
      });
      const vector = Float32Array.from([0.1, -2.5, 3e-38, Number.NaN]);
      const reply = await echo.ask('0', 'sum', { vector });
      expect(reply.vector).toBeInstanceOf(Float32Array);
      expect(new Uint8Array(reply.vector.buffer)).toEqual(new Uint8Array(vector.buffer));
    });

    it('spreads a group over its replicas through one queue group', async () => {
      const c = await open({ shared: true });
      await c.node([echoKind()], { host: { id: 'replica-a', groups: { echo: ['0'] } } });
      await c.node([echoKind()], { host: { id: 'replica-b', groups: { echo: ['0', '1'] } } });
      // A caller without a replica of its own: one with a replica is served by it over NATS
      // (nats.local_requests), which the NATS suite checks.
      const caller = await c.node([], { host: { id: 'caller' } });
      const echo = caller.client.grouped<EchoProtocol>('echo');
      const hosts = await Promise.all(
        Array.from(
          { length: 60 },
          async (_, i) => (await echo.ask('0', 'echo', { text: `${i}` })).host,
        ),
      );
      // Each request is answered once, by one replica, and both replicas take a share.
      expect(hosts).toHaveLength(60);
      expect(new Set(hosts)).toEqual(new Set(['replica-a', 'replica-b']));
      expect((await echo.ask('1', 'echo', { text: 'only b' })).host).toBe('replica-b');
    });

    it("prepares a kind before the host serves it, and the host's start waits for it", async () => {
      const c = await open();
      let prepared = false;
      const started = Date.now();
      const node = await c.node(
        [
          echoKind({
            prepare: async () => {
              await new Promise((resolve) => setTimeout(resolve, 150));
              prepared = true;
            },
          }),
        ],
        groups,
      );
      expect(prepared).toBe(true);
      expect(Date.now() - started).toBeGreaterThanOrEqual(140);
      const echo = node.client.grouped<EchoProtocol>('echo');
      expect((await echo.ask('0', 'echo', { text: 'ready' })).text).toBe('ready');
    });

    it('starts eager groups before joining their queue groups, and shows their stats', async () => {
      const c = await open();
      const node = await c.node(
        [
          echoKind({
            activateOnStart: true,
            delayMs: 50,
            failGroups: ['1'],
            defaultGroups: ['0', '1'],
          }),
        ],
        { host: { id: 'eager' } },
      );
      // Group 0 started (and was ready before the host finished starting); group 1 failed, so
      // this replica keeps out of its queue group and the host is not ready.
      expect(node.host.ready).toBe(false);
      const echo = node.client.grouped<EchoProtocol>('echo');
      expect((await echo.ask('0', 'echo', { text: 'a' })).group).toBe('0');
      // Nobody serves group 1: `ask` retries "no responders" within its deadline, then gives that
      // error. The budget leaves room for a slow round trip on a loaded machine, which would
      // otherwise end the last attempt in a timeout instead.
      await expect(
        echo.ask('1', 'echo', { text: 'b' }, { timeoutMs: 1000 }),
      ).rejects.toBeInstanceOf(NoRespondersError);
      const [stats] = await discoverServices(node.transport, 'STATS', { name: 'test-echo' });
      const data = stats?.endpoints[0]?.data as {
        groups: string[];
        actors: Record<string, unknown>;
      };
      expect(data.groups).toEqual(['0']);
      expect(data.actors).toEqual({ '0': { echoed: 1 } });
    });

    it('turns bad input, unknown ops and handler failures into typed errors, and keeps serving', async () => {
      const c = await open();
      const node = await c.node([counterKind()]);
      const counters = node.client.keyed<CounterProtocol>('counter');
      const bad = await counters
        .ask('k', 'add', { amount: 'x' as unknown as number })
        .catch((e: unknown) => e);
      expect(bad).toBeInstanceOf(BadRequestError);
      expect((bad as BadRequestError).field).toBe('amount');
      const unknown = await node.client
        .ask({ kind: 'counter', key: 'k' }, 'nope', {})
        .catch((e: unknown) => e);
      expect(unknown).toBeInstanceOf(UnknownOpError);
      const failed = await counters.ask('k', 'fail', { message: 'boom' }).catch((e: unknown) => e);
      expect(failed).toBeInstanceOf(InternalError);
      expect((failed as Error).message).toBe('boom');
      const notJson = await node.transport
        .request(
          node.client.subjectFor({ kind: 'counter', key: 'k' }, 'add'),
          new TextEncoder().encode('{'),
          {
            timeoutMs: 1000,
          },
        )
        .then(decodeReply)
        .catch((e: unknown) => e);
      expect((notJson as BadRequestError).field).toBe('payload');
      expect(await counters.ask('k', 'add', { amount: 1 })).toMatchObject({ total: 1 });
    });

    it('times out a slow handler at the deadline and drops requests that arrive expired', async () => {
      const c = await open();
      const node = await c.node([counterKind()]);
      const counters = node.client.keyed<CounterProtocol>('counter');
      const started = Date.now();
      await expect(
        counters.ask('slow', 'slow', { ms: 400 }, { timeoutMs: 100 }),
      ).rejects.toBeInstanceOf(TimeoutError);
      expect(Date.now() - started).toBeLessThan(350);

      // A request whose deadline has already passed gets no answer at all.
      const payload = encode({ amount: 1 });
      const expired = node.transport.request(
        node.client.subjectFor({ kind: 'counter', key: 'late' }, 'add'),
        payload.data,
        {
          timeoutMs: 200,
          headers: { [Header.Deadline]: String(Date.now() - 1) },
        },
      );
      await expect(expired).rejects.toBeInstanceOf(TimeoutError);
      expect(await counters.ask('late', 'get', {})).toMatchObject({ total: 0 });

      // A deadline that is not a time is refused, naming the header: as NaN it would never expire.
      const garbled = await node.transport.request(
        node.client.subjectFor({ kind: 'counter', key: 'late' }, 'add'),
        payload.data,
        { timeoutMs: 1000, headers: { [Header.Deadline]: 'soon' } },
      );
      expect(() => decodeReply(garbled)).toThrow(BadRequestError);
      expect(() => decodeReply(garbled)).toThrow(/Recsys-Deadline/);
      expect(await counters.ask('late', 'get', {})).toMatchObject({ total: 0 });
      const metrics = await node.metrics.expose();
      expect(metrics).toMatch(/recsys_actor_deadline_drops_total\{kind="counter"\} [1-9]/);
    });

    it('fails fast with no responders, after retrying within the deadline', async () => {
      const c = await open();
      const node = await c.node([echoKind()], groups);
      const started = Date.now();
      await expect(
        node.client.ask({ kind: 'echo', group: '7' }, 'echo', { text: 'x' }, { timeoutMs: 400 }),
      ).rejects.toBeInstanceOf(NoRespondersError);
      // Retries stop at the deadline; the bound leaves room for a loaded machine.
      expect(Date.now() - started).toBeLessThan(2500);
    });

    it('refuses messages beyond the mailbox bound with a retryable overloaded error', async () => {
      const c = await open();
      const node = await c.node([counterKind()], { runtime: { mailbox_capacity: 2 } });
      const subject = node.client.subjectFor({ kind: 'counter', key: 'busy' }, 'slow');
      const payload = encode({ ms: 300 });
      const raw = Array.from({ length: 6 }, () =>
        node.transport
          .request(subject, payload.data, { timeoutMs: 3000 })
          .then(decodeReply)
          .then(
            () => 'ok',
            (e: unknown) => e,
          ),
      );
      const results = await Promise.all(raw);
      const overloaded = results.filter((r) => r instanceof OverloadedError);
      // One runs, two wait, the rest are refused at once.
      expect(results.filter((r) => r === 'ok')).toHaveLength(3);
      expect(overloaded).toHaveLength(3);
      expect((overloaded[0] as OverloadedError).retryable).toBe(true);
    });

    it('delivers tells (fire and forget)', async () => {
      const c = await open();
      const node = await c.node([counterKind()]);
      const counters = node.client.keyed<CounterProtocol>('counter');
      for (let i = 0; i < 10; i++) counters.tell('told', 'add', { amount: 1 });
      await eventually(async () => (await counters.ask('told', 'get', {})).total === 10);
    });

    it('shows every host in $SRV.PING, $SRV.INFO and $SRV.STATS with its stats', async () => {
      const c = await open({ shared: true });
      const a = await c.node([counterKind(), echoKind()], {
        ...groups,
        host: { id: 'host-a', groups: { echo: ['0'] } },
      });
      const b = await c.node([counterKind()], { host: { id: 'host-b' } });
      await a.client.keyed<CounterProtocol>('counter').ask('x', 'add', { amount: 1 });
      const pings = await discoverServices(a.transport, 'PING');
      expect(pings.map((p) => `${p.name}@${p.metadata?.['host']}`).sort()).toEqual([
        'test-counter@host-a',
        'test-counter@host-b',
        'test-echo@host-a',
      ]);
      const infos = await discoverServices(a.transport, 'INFO', { name: 'test-counter' });
      expect(infos).toHaveLength(2);
      expect(infos[0]?.endpoints.map((e) => e.name).sort()).toEqual([
        'add',
        'fail',
        'get',
        'slow',
        'tick',
      ]);
      expect(infos[0]?.endpoints[0]?.subject).toMatch(/^test\.counter\.\*\.\*\./);
      await eventually(
        async () => {
          const stats = await discoverServices(b.transport, 'STATS', { name: 'test-counter' });
          const owned = stats.map(
            (s) => (s.endpoints[0]?.data as { partitions_owned: number }).partitions_owned,
          );
          return owned.length === 2 && owned.every((n) => n > 0) && owned[0]! + owned[1]! === 64;
        },
        { timeoutMs: 15_000, message: 'both hosts own partitions' },
      );
      const stats = await discoverServices(a.transport, 'STATS', { name: 'test-counter' });
      const requests = stats
        .flatMap((s) => s.endpoints)
        .filter((e) => e.name === 'add')
        .reduce((n, e) => n + e.num_requests, 0);
      expect(requests).toBe(1);
    });

    it('splits partitions between hosts, one owner each, and moves them when a host stops', async () => {
      const c = await open({ shared: true });
      const a = await c.node([counterKind()], { host: { id: 'host-a' } });
      const b = await c.node([counterKind()], { host: { id: 'host-b' } });
      const served = (n: RunningNode): number[] => n.host.servedPartitions('counter');
      await eventually(() => served(a).length + served(b).length === 64 && served(b).length > 0, {
        timeoutMs: 15_000,
        message: 'partitions split between hosts',
      });
      expect(served(a).filter((p) => served(b).includes(p))).toEqual([]);
      const counters = a.client.keyed<CounterProtocol>('counter');
      const keys = Array.from({ length: 40 }, (_, i) => `key-${i}`);
      await Promise.all(keys.map((k) => counters.ask(k, 'add', { amount: 1 })));
      const hosts = new Set(
        await Promise.all(keys.map(async (k) => (await counters.ask(k, 'get', {})).host)),
      );
      expect(hosts).toEqual(new Set(['host-a', 'host-b']));

      await b.stop();
      await eventually(() => served(a).length === 64, {
        timeoutMs: 10_000,
        message: 'host-a owns all partitions',
      });
      const replies = await Promise.all(
        keys.map((k) => counters.ask(k, 'get', {}, { timeoutMs: 3000 })),
      );
      expect(replies.every((r) => r.host === 'host-a')).toBe(true);
    });

    it('drains in-flight work on graceful stop and writes state behind', async () => {
      const c = await open();
      const store = memoryCounterStore();
      const node = await c.node([counterKind(store)]);
      const counters = node.client.keyed<CounterProtocol>('counter');
      await counters.ask('saved', 'add', { amount: 7 });
      const slow = counters.ask('saved', 'slow', { ms: 200 }, { timeoutMs: 3000 });
      await new Promise((resolve) => setTimeout(resolve, 20));
      await node.stop();
      await expect(slow).resolves.toEqual({ done: true });
      expect(store.data.get('saved')).toEqual({ total: 7, activations: 1 });
    });
  });
}
