/**
 * Callees that had no responders at all (the last replica of a group gone), left out for a while:
 * the client retries "no responders" until the deadline, since a replica may be moving, so asking
 * a callee that is gone would cost every call its whole budget. After the pause it is asked again,
 * and the first call that finds it back brings it into use.
 */
import { NoRespondersError } from '../errors.js';

export class Unreachable<K> {
  /** Callee → time (epoch ms) until which it is left out. */
  private readonly until = new Map<K, number>();

  constructor(
    private readonly pauseMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether `key` had no responders less than the pause ago. */
  has(key: K): boolean {
    const until = this.until.get(key);
    if (until === undefined) return false;
    if (this.now() < until) return true;
    this.until.delete(key);
    return false;
  }

  /** `call`'s result; a `NoRespondersError` from it also leaves `key` out for the pause. */
  async track<T>(key: K, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      if (err instanceof NoRespondersError) this.until.set(key, this.now() + this.pauseMs);
      throw err;
    }
  }
}
