/**
 * Polling for conditions that become true "eventually" (a message consumed, a lease taken over),
 * instead of sleeping for a fixed time and hoping.
 */

// Captured at load so that polling keeps real time even while a test has fake timers installed.
const realSetTimeout = globalThis.setTimeout;
const realClearTimeout = globalThis.clearTimeout;
const realNow = Date.now.bind(Date);

/** Options of {@link eventually}. */
export interface EventuallyOptions {
  /** How long to keep trying, in milliseconds. @default 5000 */
  timeoutMs?: number;
  /** Pause between attempts, in milliseconds. @default 25 */
  intervalMs?: number;
  /** What was awaited, used as the start of the error message. @default 'condition not met' */
  message?: string;
}

/** Thrown by {@link eventually} when the condition did not hold in time; `cause` is the last error. */
export class EventuallyTimeoutError extends Error {
  override readonly name = 'EventuallyTimeoutError';
  readonly code = 'EVENTUALLY_TIMEOUT';
}

function describeError(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

function checkOption(name: string, value: number, allowZero: boolean): void {
  if (!Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw new TypeError(`${name} must be a ${allowZero ? 'non-negative' : 'positive'} number`);
  }
}

const NOT_SETTLED = Symbol('not settled');

/**
 * Calls `fn` until it returns without throwing and, when it returns a boolean, until it returns
 * `true`; resolves with that value. An attempt still pending at the deadline counts as failed.
 * Rejects with an {@link EventuallyTimeoutError} carrying the last error when time runs out.
 */
export async function eventually<T>(
  fn: () => T | Promise<T>,
  options: EventuallyOptions = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 5_000;
  const intervalMs = options.intervalMs ?? 25;
  checkOption('timeoutMs', timeoutMs, false);
  checkOption('intervalMs', intervalMs, true);

  const deadline = realNow() + timeoutMs;
  let attempts = 0;
  let lastError: unknown;
  let lastReason = 'no attempt finished';

  for (;;) {
    attempts++;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const remaining = Math.max(deadline - realNow(), 0);
      const pastDeadline = new Promise<typeof NOT_SETTLED>((resolve) => {
        timer = realSetTimeout(() => resolve(NOT_SETTLED), remaining);
      });
      const value = await Promise.race([Promise.resolve().then(fn), pastDeadline]);
      if (value === NOT_SETTLED) {
        lastReason = 'the last attempt was still pending at the deadline';
      } else if (value === false) {
        lastError = undefined;
        lastReason = 'the last attempt returned false';
      } else {
        return value;
      }
    } catch (err) {
      lastError = err;
      lastReason = `last error: ${describeError(err)}`;
    } finally {
      realClearTimeout(timer);
    }

    const remaining = deadline - realNow();
    if (remaining <= 0) break;
    await new Promise<void>((resolve) => realSetTimeout(resolve, Math.min(intervalMs, remaining)));
  }

  const what = options.message ?? 'condition not met';
  throw new EventuallyTimeoutError(
    `${what} within ${timeoutMs} ms (${attempts} attempt${attempts === 1 ? '' : 's'}; ${lastReason})`,
    lastError === undefined ? undefined : { cause: lastError },
  );
}
