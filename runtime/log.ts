/**
 * One root pino logger per process; modules, actors and requests take children of it
 * (`log.child({ actor: 'user', key })`). Logs go to stdout as JSON lines.
 */
import { pino } from 'pino';
import type { Logger, LevelWithSilent } from 'pino';

export type { Logger } from 'pino';

export interface LoggerOptions {
  level?: LevelWithSilent;
  /** Name shown as `name` on every line. @default 'recsys' */
  name?: string;
  /** Where lines go; defaults to stdout. Tests pass a stream to read them. */
  destination?: NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const settings = { name: options.name ?? 'recsys', level: options.level ?? 'info' };
  return options.destination === undefined
    ? pino(settings)
    : pino(settings, options.destination as unknown as pino.DestinationStream);
}

/** A logger that writes nothing, for tests and library use without logging. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
