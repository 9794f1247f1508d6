/**
 * How a one-shot command reports failure: the message on stderr, and exit status 2 for bad input
 * (a wrong option, a malformed file) or 1 for anything else.
 */

/** An error class a command treats as bad input. */
export type InputErrorClass = abstract new (...args: never[]) => Error;

export function reportFailure(err: unknown, inputErrors: readonly InputErrorClass[]): void {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`recsys: ${message}\n`);
  process.exitCode = inputErrors.some((type) => err instanceof type) ? 2 : 1;
}
