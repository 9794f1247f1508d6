/**
 * The end-to-end load: an open loop through the HTTP gateway. Request i is due at
 * `t0 + i / rate` whatever happened to the ones before it, and its latency is counted from that
 * due time (no coordinated omission: a stall shows up in the figures instead of slowing the load
 * down). The ticks come from a thread of their own, as Node timers fire up to a millisecond late.
 *
 * Beside the load, a read-your-writes probe: for one user at a time, a recommendation, a click on
 * one of its items, and at once the next recommendation; timed from sending the click to receiving
 * the first recommendation that reflects it (the clicked item gone from the reply and, where the
 * topology can ask the user actor for its `state`, the click in the session's history).
 */
import { Worker } from 'node:worker_threads';
import type { RecommendReply, SessionState } from '../../actors/user/messages.js';
import type { GatewayClient } from './e2e-http.js';
import type { Operation, Workload } from './e2e-workload.js';
import { LatencyRecorder } from './stats.js';
import type { LatencySummary } from './stats.js';
import { TICKER_SOURCE, epochNow } from './ticker.js';

/** Calls `onTick(i, due)` at `startAt + i * 1000 / rate` (epoch ms) for `count` ticks. */
async function tick(
  rate: number,
  count: number,
  onTick: (i: number, due: number) => void,
): Promise<{ startAt: number }> {
  const intervalMs = 1000 / rate;
  const startAt = epochNow() + 20;
  const ticker = new Worker(TICKER_SOURCE, {
    eval: true,
    workerData: { startAt, intervalMs, count },
  });
  try {
    await new Promise<void>((resolve, reject) => {
      ticker.on('error', reject);
      ticker.on('message', (i: number) => {
        onTick(i, startAt + i * intervalMs);
        if (i === count - 1) resolve();
      });
    });
  } finally {
    await ticker.terminate();
  }
  return { startAt };
}

/** What one rate measured, latencies in ms. */
export interface LoadFigures {
  rate: number;
  seconds: number;
  sent: number;
  recommends: number;
  feedbacks: number;
  completed: number;
  /** Failed requests by cause (`http_503`, `timeout`, ...). */
  errors: Record<string, number>;
  errorCount: number;
  /** Recommendations whose reply listed something degraded, and how often each reason. */
  degraded: number;
  degradedReasons: Record<string, number>;
  coldStarts: number;
  /** Recommendations with fewer items than asked. */
  shortReplies: number;
  /** Completed requests per second over the window. */
  throughput: number;
  /** End to end, from each request's due time: recommendations, feedback posts. */
  recommend: LatencySummary;
  feedback: LatencySummary;
  /** The replies' own `timings_ms`, per stage. */
  stages: { retrieval: LatencySummary; ranking: LatencySummary; total: LatencySummary };
  /** How late requests left after their due time (this process busy). */
  sendLag: LatencySummary;
}

export interface RunLoadOptions {
  client: GatewayClient;
  workload: Workload;
  rate: number;
  seconds: number;
}

function errorCode(err: unknown): string {
  if (err !== null && typeof err === 'object' && 'code' in err && typeof err.code === 'string') {
    return err.code;
  }
  return 'error';
}

/** Runs the open loop at `rate` for `seconds`; resolves once every request was answered. */
export async function runLoad(options: RunLoadOptions): Promise<LoadFigures> {
  const { client, workload, rate, seconds } = options;
  const total = Math.max(1, Math.round(rate * seconds));
  const recommend = new LatencyRecorder();
  const feedback = new LatencyRecorder();
  const stages = {
    retrieval: new LatencyRecorder(),
    ranking: new LatencyRecorder(),
    total: new LatencyRecorder(),
  };
  const lag = new LatencyRecorder();
  const errors: Record<string, number> = {};
  const degradedReasons: Record<string, number> = {};
  let degraded = 0;
  let coldStarts = 0;
  let shortReplies = 0;
  let recommends = 0;
  let feedbacks = 0;
  const pending: Promise<void>[] = [];
  const fail = (code: string): void => {
    errors[code] = (errors[code] ?? 0) + 1;
  };

  const send = async (op: Operation, due: number): Promise<void> => {
    if (op.kind === 'recommend') {
      const reply = await client.post<RecommendReply>('/recommend', op.body);
      if (reply.status !== 200) return fail(`http_${reply.status}`);
      const body = reply.body;
      recommend.record(epochNow() - due);
      workload.replied(body);
      stages.retrieval.record(body.timings_ms.retrieval);
      stages.ranking.record(body.timings_ms.ranking);
      stages.total.record(body.timings_ms.total);
      if (body.degraded.length > 0) degraded++;
      for (const reason of body.degraded) {
        degradedReasons[reason] = (degradedReasons[reason] ?? 0) + 1;
      }
      if (body.cold_start) coldStarts++;
      if (body.items.length < op.body.count) shortReplies++;
      return;
    }
    const reply = await client.post('/feedback', op.body);
    if (reply.status !== 202) return fail(`http_${reply.status}`);
    feedback.record(epochNow() - due);
  };

  const { startAt } = await tick(rate, total, (i, due) => {
    lag.record(epochNow() - due);
    const op = workload.next(i);
    if (op.kind === 'recommend') recommends++;
    else feedbacks++;
    pending.push(send(op, due).catch((err: unknown) => fail(errorCode(err))));
  });
  await Promise.all(pending);
  const elapsedMs = epochNow() - startAt;
  const errorCount = Object.values(errors).reduce((sum, n) => sum + n, 0);
  const completed = recommend.count + feedback.count;
  return {
    rate,
    seconds,
    sent: total,
    recommends,
    feedbacks,
    completed,
    errors,
    errorCount,
    degraded,
    degradedReasons,
    coldStarts,
    shortReplies,
    throughput: (completed * 1000) / Math.max(elapsedMs, seconds * 1000),
    recommend: recommend.summary(),
    feedback: feedback.summary(),
    stages: {
      retrieval: stages.retrieval.summary(),
      ranking: stages.ranking.summary(),
      total: stages.total.summary(),
    },
    sendLag: lag.summary(),
  };
}

/** Asks the user actor for its session (over NATS); absent where the topology cannot. */
export type StateOf = (userId: string) => Promise<SessionState>;

export interface ReadYourWritesFigures {
  probes: number;
  /** Probes whose first recommendation after the click reflected it. */
  firstReflected: number;
  /** Probes that never saw the click reflected within the probe's limit. */
  neverReflected: number;
  /** Probes that failed (HTTP error, empty reply). */
  failed: number;
  /** Whether the session state was checked too (else the reply alone). */
  stateChecked: boolean;
  /** From sending the click to the reflecting recommendation, ms. */
  latency: LatencySummary;
  /** Of that, the click's own `POST /feedback` (stored on the stream, applied to the session). */
  feedback: LatencySummary;
}

export interface ReadYourWritesOptions {
  client: GatewayClient;
  workload: Workload;
  stateOf: StateOf | undefined;
  /** Pause between probes, ms. @default 100 */
  intervalMs?: number;
  /** A click not reflected this long after it was sent counts as never reflected. @default 1000 */
  limitMs?: number;
}

/**
 * Probes read-your-writes, one probe at a time, until `stop` resolves; returns the figures. The
 * clicked item must leave the reply; with `stateOf`, the click must also be in the session's
 * history (asked after the reply: the actor applies messages in order, so a click it holds then
 * it held for the reply when the gateway passed the click on before answering 202).
 */
export async function probeReadYourWrites(
  options: ReadYourWritesOptions,
  stop: Promise<void>,
): Promise<ReadYourWritesFigures> {
  const { client, workload, stateOf } = options;
  const intervalMs = options.intervalMs ?? 100;
  const limitMs = options.limitMs ?? 1000;
  const latency = new LatencyRecorder();
  const feedback = new LatencyRecorder();
  let stopped = false;
  void stop.then(() => {
    stopped = true;
  });
  const figures = { probes: 0, firstReflected: 0, neverReflected: 0, failed: 0 };
  while (!stopped) {
    figures.probes++;
    try {
      const userId = workload.anyKnownUser();
      const first = await client.post<RecommendReply>('/recommend', { user_id: userId, count: 10 });
      const itemId = first.body.items?.[0]?.item_id;
      if (first.status !== 200 || itemId === undefined) throw new Error('no item to click');
      const sentAt = performance.now();
      const click = await client.post('/feedback', {
        user_id: userId,
        item_id: itemId,
        event_type: 'click',
      });
      if (click.status !== 202) throw new Error(`feedback: HTTP ${click.status}`);
      feedback.record(performance.now() - sentAt);
      let attempts = 0;
      for (;;) {
        attempts++;
        const next = await client.post<RecommendReply>('/recommend', {
          user_id: userId,
          count: 10,
        });
        const receivedAt = performance.now();
        if (next.status !== 200) throw new Error(`recommend: HTTP ${next.status}`);
        let reflected = !next.body.items.some((item) => item.item_id === itemId);
        if (reflected && stateOf !== undefined) {
          reflected = (await stateOf(userId)).history.includes(itemId);
        }
        if (reflected) {
          latency.record(receivedAt - sentAt);
          if (attempts === 1) figures.firstReflected++;
          break;
        }
        if (performance.now() - sentAt > limitMs) {
          figures.neverReflected++;
          break;
        }
      }
    } catch {
      figures.failed++;
    }
    await Promise.race([new Promise((resolve) => setTimeout(resolve, intervalMs)), stop]);
  }
  return {
    ...figures,
    stateChecked: stateOf !== undefined,
    latency: latency.summary(),
    feedback: feedback.summary(),
  };
}
