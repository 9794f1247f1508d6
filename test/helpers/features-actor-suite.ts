/**
 * The `features` actor on a running node, the same cases on both transports: the in-process
 * cluster with the memory store, and nats-server with redis-server. Feedback published to the
 * events stream reaches the stream views through the actor's writer and is read back with `get`;
 * bad requests are refused naming the field.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { featuresKind } from '../../actors/features/index.js';
import type { FeaturesProtocol, GetFeaturesReply } from '../../actors/features/index.js';
import { resolveConfig } from '../../runtime/config/index.js';
import { BadRequestError } from '../../runtime/errors.js';
import {
  deadLetterFilter,
  feedbackSubject,
  openEventsStream,
  publishFeedback,
} from '../../runtime/events/index.js';
import type { FeedbackEvent } from '../../runtime/events/index.js';
import { loadConfiguredDefinitions } from '../../runtime/features/definitions.js';
import type { RunningNode } from '../../runtime/node.js';
import type { StreamMessage } from '../../runtime/stream/index.js';
import { testCluster, uniquePrefix } from './cluster.js';
import type { RawConfig, TestCluster } from './cluster.js';
import { eventually } from './eventually.js';

export interface FeaturesSuiteEnv {
  /** NATS server URL; undefined runs on the in-process transport. */
  natsUrl: string | undefined;
  /** Config changes every node of the suite gets (the Redis URL on NATS). */
  raw: RawConfig;
}

const config = resolveConfig({});
const definitions = loadConfiguredDefinitions(config.features);
export const featuresTestKind = featuresKind({ definitions, events: config.events });

const PARTITIONS = 64;
let sequence = 0;

export function feedback(
  user_id: string,
  item_id: string,
  type: FeedbackEvent['type'],
  ts_ms = Date.now(),
): FeedbackEvent {
  return { event_id: `e-${process.pid}-${sequence++}`, user_id, item_id, type, ts_ms };
}

export async function getFeatures(
  node: RunningNode,
  request: { view: string; entities: string[]; fields?: string[] },
): Promise<GetFeaturesReply> {
  return node.client.grouped<FeaturesProtocol>('features').ask('0', 'get', request);
}

export function featuresActorSuite(name: string, env: () => FeaturesSuiteEnv): void {
  describe(name, () => {
    let cluster: TestCluster | undefined;
    let prefix = '';

    const start = async (): Promise<RunningNode> => {
      const { natsUrl, raw } = env();
      prefix = uniquePrefix('f');
      cluster = testCluster(natsUrl, { prefix });
      return cluster.node([featuresTestKind], raw);
    };

    afterEach(async () => {
      await cluster?.close();
      cluster = undefined;
    });

    it('reads defaults for entities without values, and what feedback made of them', async () => {
      const node = await start();
      const before = await getFeatures(node, { view: 'user_realtime', entities: ['u1'] });
      expect(before.degraded).toBe(false);
      expect(before.rows).toEqual([
        {
          entity: 'u1',
          values: {
            views_5m: 0,
            clicks_5m: 0,
            views_30m: 0,
            clicks_30m: 0,
            ratings_5m: 0,
            ratings_30m: 0,
            top_categories_5m: [],
            last_event_ms: 0,
          },
          event_time_ms: null,
        },
      ]);

      await node.features.store.write({
        rows: [
          {
            view: 'item_profile',
            entity: 'i1',
            row: { values: { category: 'jazz' }, eventTimeMs: 1 },
          },
          {
            view: 'item_profile',
            entity: 'i2',
            row: { values: { category: 'rock' }, eventTimeMs: 1 },
          },
        ],
      });
      const stream = await openEventsStream(node.streams, prefix, config.events);
      const now = Date.now();
      const events = [
        feedback('u1', 'i1', 'view', now - 2000),
        feedback('u1', 'i1', 'click', now - 1000),
        feedback('u1', 'i2', 'view', now),
      ];
      for (const event of events) await publishFeedback(stream, prefix, PARTITIONS, event);
      // The same event id again, as a retrying publisher would: stored once, counted once.
      const again = await publishFeedback(stream, prefix, PARTITIONS, events[2]!);
      expect(again.duplicate).toBe(true);

      const user = await eventually(async () => {
        const reply = await getFeatures(node, { view: 'user_realtime', entities: ['u1'] });
        expect(reply.rows[0]!.values['views_5m']).toBe(2);
        return reply.rows[0]!;
      });
      expect(user.values).toMatchObject({ clicks_5m: 1, views_30m: 2, clicks_30m: 1 });
      expect(user.values['top_categories_5m']).toEqual(['jazz', 'rock']);
      expect(user.event_time_ms).toBe(now);
      const items = await getFeatures(node, {
        view: 'item_realtime',
        entities: ['i1', 'i2', 'i3'],
        fields: ['views_5m', 'clicks_5m'],
      });
      expect(items.rows.map((row) => row.values)).toEqual([
        { views_5m: 1, clicks_5m: 1 },
        { views_5m: 1, clicks_5m: 0 },
        { views_5m: 0, clicks_5m: 0 },
      ]);
      const stats = await node.client.grouped<FeaturesProtocol>('features').ask('0', 'stats', {});
      expect(stats.writer?.events.applied).toBe(3);
      expect(stats.online.hitRate).toBeGreaterThanOrEqual(0);
    });

    it('sends a malformed event to the dead-letter subject with its reason', async () => {
      const node = await start();
      const stream = await openEventsStream(node.streams, prefix, config.events);
      await stream.publish(
        feedbackSubject(prefix, PARTITIONS, 'u9'),
        new TextEncoder().encode(JSON.stringify({ event_id: 'bad-1', user_id: 'u9' })),
      );
      const dead: StreamMessage[] = [];
      const reader = await stream.read(deadLetterFilter(prefix), 1, (message) => {
        dead.push(message);
      });
      try {
        await eventually(() => expect(dead).toHaveLength(1));
        expect(dead[0]!.headers['Recsys-Dead-Reason']).toMatch(/item_id/);
      } finally {
        await reader.stop();
      }
      // The writer went on: a good event after it is counted.
      await publishFeedback(stream, prefix, PARTITIONS, feedback('u9', 'i9', 'click'));
      await eventually(async () => {
        const reply = await getFeatures(node, { view: 'user_realtime', entities: ['u9'] });
        expect(reply.rows[0]!.values['clicks_5m']).toBe(1);
      });
    });

    it('refuses an unknown view, field or a bad entity list, naming the field', async () => {
      const node = await start();
      const refused = async (request: unknown): Promise<BadRequestError> => {
        const err = await getFeatures(node, request as { view: string; entities: string[] }).catch(
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(BadRequestError);
        return err as BadRequestError;
      };
      expect((await refused({ view: 'nope', entities: ['u1'] })).field).toBe('view');
      expect((await refused({ view: 'user_realtime', entities: [] })).field).toBe('entities');
      expect((await refused({ view: 'user_realtime', entities: ['u1', ''] })).field).toBe(
        'entities[1]',
      );
      expect(
        (await refused({ view: 'user_realtime', entities: ['u1'], fields: ['views_5m', 'x'] }))
          .field,
      ).toBe('fields[1]');
      expect((await refused({ view: 'user_realtime', entities: ['u1'], extra: 1 })).field).toBe(
        'extra',
      );
      // Still serving.
      const ok = await getFeatures(node, { view: 'item_profile', entities: ['i1'] });
      expect(ok.rows).toHaveLength(1);
    });
  });
}
