import { describe, expect, it } from 'vitest';
import { Unreachable } from '../../runtime/client/unreachable.js';
import { NoRespondersError, TimeoutError } from '../../runtime/errors.js';

describe('Unreachable', () => {
  it('leaves a callee out for the pause after it had no responders, then asks it again', async () => {
    let now = 1000;
    const down = new Unreachable<string>(500, () => now);
    await expect(down.track('a', () => Promise.resolve(1))).resolves.toBe(1);
    expect(down.has('a')).toBe(false);
    const gone = () => Promise.reject(new NoRespondersError('no responders'));
    await expect(down.track('a', gone)).rejects.toBeInstanceOf(NoRespondersError);
    expect(down.has('a')).toBe(true);
    expect(down.has('b')).toBe(false);
    now += 499;
    expect(down.has('a')).toBe(true);
    now += 1;
    expect(down.has('a')).toBe(false);
  });

  it('does not leave a callee out for other failures: it may have run the call', async () => {
    const down = new Unreachable<string>(500);
    const late = () => Promise.reject(new TimeoutError('late'));
    await expect(down.track('a', late)).rejects.toBeInstanceOf(TimeoutError);
    expect(down.has('a')).toBe(false);
  });
});
