/**
 * Time limits. Node's timers take at most 2^31 - 1 ms (about 24.8 days): a longer delay prints a
 * `TimeoutOverflowWarning` and fires after 1 ms, which would turn a far-off deadline into an
 * immediate timeout. Every timer built from a caller's deadline or budget goes through
 * {@link timerDelay}.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** `ms` as a delay `setTimeout` honours: at most {@link MAX_TIMER_MS}, at least 0. */
export function timerDelay(ms: number): number {
  return Math.max(0, Math.min(ms, MAX_TIMER_MS));
}

/**
 * `work`, or a rejection with `late()` once `ms` have passed without it settling. With no time
 * left it rejects at once (and `work`'s own failure, should it come, is not left unhandled). The
 * work itself goes on: this only stops waiting for it.
 */
export function within<T>(work: Promise<T>, ms: number, late: () => Error): Promise<T> {
  if (ms <= 0) {
    work.catch(() => undefined);
    return Promise.reject(late());
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(late()), timerDelay(ms));
  });
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}
