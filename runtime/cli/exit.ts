/**
 * How a one-shot command reports failure: the message on stderr, and exit status 2 for bad input
 * (a wrong option, a malformed file) or 1 for anything else.
 */

import type { Logger } from 'pino';
import { ConfigError } from '../errors.js';

/** An error class a command treats as bad input. */
export type InputErrorClass = abstract new (...args: never[]) => Error;

export function reportFailure(err: unknown, inputErrors: readonly InputErrorClass[]): void {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`recsys: ${message}\n`);
  process.exitCode = inputErrors.some((type) => err instanceof type) ? 2 : 1;
}

/**
 * How a long-running process (a node, the gateway) that could not start exits: the message on
 * stderr, status 2 for a configuration error, 1 for anything else.
 */
export function exitStartFailure(err: unknown): never {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`recsys: ${message}\n`);
  process.exit(err instanceof ConfigError ? 2 : 1);
}

/**
 * Shuts a long-running process down gracefully on SIGTERM or SIGINT with `stop`, then exits (0,
 * or 1 when the shutdown failed); a second signal exits at once, without draining (130).
 */
export function exitOnSignals(log: Logger, stop: () => Promise<void>): void {
  let signals = 0;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (++signals > 1) {
      log.warn({ signal }, 'second signal: exiting without draining');
      process.exit(130);
    }
    log.info({ signal }, 'shutting down');
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}
