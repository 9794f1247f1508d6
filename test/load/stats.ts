/**
 * Latency recording and load drivers for the benchmarks. Samples are kept whole (a growable
 * Float64Array of microseconds) and sorted once at the end: exact percentiles, no histogram
 * buckets to tune, and a million samples cost 8 MB.
 */

/** Percentiles of one series of latencies, in the unit recorded (microseconds, unless said). */
export interface LatencySummary {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  max: number;
}

export class LatencyRecorder {
  private samples: Float64Array;
  private size = 0;

  constructor(initialCapacity = 1 << 16) {
    this.samples = new Float64Array(initialCapacity);
  }

  get count(): number {
    return this.size;
  }

  /** Records one latency, in microseconds unless the caller keeps another unit throughout. */
  record(micros: number): void {
    if (this.size === this.samples.length) {
      const grown = new Float64Array(this.samples.length * 2);
      grown.set(this.samples);
      this.samples = grown;
    }
    this.samples[this.size++] = micros;
  }

  summary(): LatencySummary {
    const sorted = this.samples.slice(0, this.size).sort();
    let sum = 0;
    for (const value of sorted) sum += value;
    return {
      count: this.size,
      mean: this.size === 0 ? 0 : sum / this.size,
      p50: percentile(sorted, 0.5),
      p90: percentile(sorted, 0.9),
      p95: percentile(sorted, 0.95),
      p99: percentile(sorted, 0.99),
      max: this.size === 0 ? 0 : (sorted[this.size - 1] ?? 0),
    };
  }
}

/** Nearest-rank percentile of an ascending array; 0 when empty. */
export function percentile(sorted: Float64Array | readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] ?? 0;
}

/** Median of a few numbers (rounds of one measurement). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return 0;
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] ?? 0)
    : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** Operations per second. */
export function throughput(operations: number, elapsedMs: number): number {
  return elapsedMs <= 0 ? 0 : (operations * 1000) / elapsedMs;
}

/** One call of the system under test; `i` is a running index (to spread keys). */
export type Operation = (i: number) => Promise<unknown>;

export interface SequentialResult {
  latency: LatencySummary;
  /** Requests per second with one in flight. */
  rate: number;
}

/** `requests` calls one after another (one in flight), each timed. */
export async function runSequential(op: Operation, requests: number): Promise<SequentialResult> {
  const recorder = new LatencyRecorder(requests);
  const started = performance.now();
  for (let i = 0; i < requests; i++) {
    const t0 = performance.now();
    await op(i);
    recorder.record((performance.now() - t0) * 1000);
  }
  const elapsed = performance.now() - started;
  return { latency: recorder.summary(), rate: throughput(requests, elapsed) };
}

/**
 * `warmup` untimed calls, then `requests` calls one after another, each timed on the
 * high-resolution clock: the latency of one operation with nothing else in flight.
 */
export async function measureCalls(
  requests: number,
  warmup: number,
  call: (i: number) => unknown,
): Promise<LatencySummary> {
  for (let i = 0; i < warmup; i++) await call(i);
  const recorder = new LatencyRecorder(requests);
  for (let i = 0; i < requests; i++) {
    const started = process.hrtime.bigint();
    await call(i);
    recorder.record(Number(process.hrtime.bigint() - started) / 1000);
  }
  return recorder.summary();
}

export interface ClosedLoopResult {
  latency: LatencySummary;
  /** Completed requests per second. */
  rate: number;
  completed: number;
  errors: number;
}

/**
 * A closed loop: `concurrency` workers each send their next request as soon as the previous one is
 * answered, for `seconds`. Counts requests completed within the window; failures are counted apart
 * (and not timed), so a benchmark can insist there were none.
 */
export async function runClosedLoop(
  op: Operation,
  concurrency: number,
  seconds: number,
): Promise<ClosedLoopResult> {
  const recorder = new LatencyRecorder();
  let next = 0;
  let errors = 0;
  const started = performance.now();
  const stopAt = started + seconds * 1000;
  const worker = async (): Promise<void> => {
    for (;;) {
      const t0 = performance.now();
      if (t0 >= stopAt) return;
      try {
        await op(next++);
        recorder.record((performance.now() - t0) * 1000);
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  // The window ends when the last in-flight request is answered, a little after `stopAt`.
  const elapsed = performance.now() - started;
  return {
    latency: recorder.summary(),
    rate: throughput(recorder.count, elapsed),
    completed: recorder.count,
    errors,
  };
}
