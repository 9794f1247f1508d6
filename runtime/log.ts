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
  /** Human-readable lines for a terminal instead of JSON. @default false */
  pretty?: boolean;
  /** Where lines go; defaults to stdout. Tests pass a stream to read them. */
  destination?: NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const settings = { name: options.name ?? 'recsys', level: options.level ?? 'info' };
  if (options.destination !== undefined) {
    return pino(settings, options.destination as unknown as pino.DestinationStream);
  }
  // pino-pretty runs in pino's transport worker, off the event loop that serves requests.
  return options.pretty === true
    ? pino({ ...settings, transport: { target: 'pino-pretty' } })
    : pino(settings);
}

/** A logger that writes nothing, for tests and library use without logging. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
