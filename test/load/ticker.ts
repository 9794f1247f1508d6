/**
 * The open-loop benchmarks' clock: a thread that posts `i` at `startAt + i * intervalMs` (epoch
 * ms, fractional). Node's own timers have a resolution of 1 ms and fire up to a millisecond late,
 * which at 500 requests/s would add up to half an interval to every latency counted from the
 * scheduled send; `Atomics.wait` sleeps to a few tens of µs. The cost is one thread wake-up per
 * request. Run it with `new Worker(TICKER_SOURCE, { eval: true, workerData: { startAt,
 * intervalMs, count } })`.
 */
export const TICKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { startAt, intervalMs, count } = workerData;
const cell = new Int32Array(new SharedArrayBuffer(4));
const now = () => performance.timeOrigin + performance.now();
for (let i = 0; i < count; i++) {
  const wait = startAt + i * intervalMs - now();
  if (wait > 0) Atomics.wait(cell, 0, 0, wait);
  parentPort.postMessage(i);
}
`;

/** Epoch milliseconds with the monotonic clock's resolution, as the ticker counts them. */
export const epochNow = (): number => performance.timeOrigin + performance.now();
