/**
 * Node's timers take at most 2^31 - 1 ms (about 24.8 days): a longer delay prints a
 * `TimeoutOverflowWarning` and fires after 1 ms, which would turn a far-off deadline into an
 * immediate timeout. Every timer built from a caller's deadline or budget goes through this.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** `ms` as a delay `setTimeout` honours: at most {@link MAX_TIMER_MS}, at least 0. */
export function timerDelay(ms: number): number {
  return Math.max(0, Math.min(ms, MAX_TIMER_MS));
}
