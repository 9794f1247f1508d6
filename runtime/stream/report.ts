/**
 * How readers hand errors to their owners, the same in every implementation: to the callback the
 * owner gave, else out of band (an uncaught exception), so a reader never stops unnoticed.
 */

export function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/** A throwing callback, or a failure nobody listens for, is a bug above us: surface it. */
export function surface(err: unknown): void {
  setTimeout(() => {
    throw err;
  }, 0);
}

export function report(onError: ((err: Error) => void) | undefined, err: Error): void {
  if (onError === undefined) {
    surface(err);
    return;
  }
  try {
    onError(err);
  } catch (thrown) {
    surface(thrown);
  }
}
