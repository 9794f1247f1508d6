/**
 * Guards for integration suites: they need `nats-server` and `redis-server`. Locally a missing
 * binary skips the suite with a warning; under CI it fails the suite, so a CI run can never go
 * green by silently skipping everything that talks to a real server.
 */
import { describe, it } from 'vitest';
import { findServerBinary, serverBinaryEnvVar, type ServerBinary } from './servers.js';

const REQUIRED_BINARIES: readonly ServerBinary[] = ['nats-server', 'redis-server'];

/** The server binaries integration suites need that cannot be found. */
export function missingServerBinaries(): ServerBinary[] {
  return REQUIRED_BINARIES.filter((binary) => findServerBinary(binary) === undefined);
}

/** Whether every server binary the integration suites need is present. */
export function integrationAvailable(): boolean {
  return missingServerBinaries().length === 0;
}

/** Whether this runs under CI (`CI` set to anything but empty, `0` or `false`). */
export function isCi(env: NodeJS.ProcessEnv = process.env): boolean {
  const value = env.CI;
  return value !== undefined && value !== '' && value !== '0' && value.toLowerCase() !== 'false';
}

/**
 * `describe` for suites that start real servers. With the binaries missing: under CI the suite
 * consists of one failing test naming what is missing; otherwise it is skipped with a warning.
 */
export function describeIntegration(name: string, fn: () => void): void {
  const missing = missingServerBinaries();
  if (missing.length === 0) {
    describe(name, fn);
    return;
  }
  const reason = missing
    .map((binary) => `${binary} not found (put it on PATH or set ${serverBinaryEnvVar(binary)})`)
    .join('; ');
  if (isCi()) {
    describe(name, () => {
      it('has the server binaries it needs', () => {
        throw new Error(`integration suite "${name}" cannot run under CI: ${reason}`);
      });
    });
    return;
  }
  console.warn(`skipping integration suite "${name}": ${reason}`);
  describe.skip(name, fn);
}
