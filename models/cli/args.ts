/**
 * Parsers for command-line option values, shared by the model commands: each throws commander's
 * `InvalidArgumentError`, so a bad value is reported against its flag.
 */
import { InvalidArgumentError } from 'commander';

/** An integer parser with a lower bound: `--users <n>` → `integer(1)`. */
export function integer(min: number): (value: string) => number {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) {
      throw new InvalidArgumentError(`expected an integer >= ${min}, got ${value}`);
    }
    return n;
  };
}

export function positiveNumber(value: string): number {
  const n = Number(value);
  if (!(n > 0) || !Number.isFinite(n)) {
    throw new InvalidArgumentError(`expected a positive number, got ${value}`);
  }
  return n;
}

export function nonNegativeNumber(value: string): number {
  const n = Number(value);
  if (!(n >= 0) || !Number.isFinite(n)) {
    throw new InvalidArgumentError(`expected a number >= 0, got ${value}`);
  }
  return n;
}

/** A number strictly between 0 and 1, such as a test fraction. */
export function fraction(value: string): number {
  const n = Number(value);
  if (!(n > 0 && n < 1))
    throw new InvalidArgumentError(`expected a number in (0, 1), got ${value}`);
  return n;
}
