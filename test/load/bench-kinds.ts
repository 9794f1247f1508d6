/**
 * The actor kind the `runtime` benchmark calls: a keyed `bench` kind whose `echo` returns its
 * payload. Keyed on purpose, so every call goes through routing, partition ownership, activation,
 * the mailbox and the deadline checks, and the only thing measured is the runtime around a handler
 * that does nothing. Loaded by `recsys node --kinds-module test/load/bench-kinds.ts`.
 */
import { Actor, defineActorKind } from '../../runtime/actor/actor.js';
import type { ActorKind } from '../../runtime/actor/actor.js';
import type { Handlers, Protocol } from '../../runtime/actor/protocol.js';
import type { KindModuleContext } from '../../runtime/cli/kinds.js';
import { BadRequestError } from '../../runtime/errors.js';

/** The payload the benchmark sends, echoed back unchanged. */
export interface EchoPayload {
  user_id: string;
  n: number;
}

export type BenchProtocol = {
  echo: { request: EchoPayload; reply: EchoPayload };
};

export const BENCH_KIND = 'bench';

class BenchActor extends Actor<BenchProtocol> {
  readonly handlers: Handlers<BenchProtocol> = {
    echo: (request) => request,
  };
}

function validateEcho(payload: unknown): EchoPayload {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
    throw new BadRequestError('payload', 'must be a JSON object');
  }
  const { user_id: userId, n } = payload as Record<string, unknown>;
  if (typeof userId !== 'string') throw new BadRequestError('user_id', 'must be a string');
  if (typeof n !== 'number' || !Number.isFinite(n))
    throw new BadRequestError('n', 'must be a finite number');
  return { user_id: userId, n };
}

export function benchKind(): ActorKind<BenchProtocol> {
  return defineActorKind<BenchProtocol>({
    name: BENCH_KIND,
    placement: 'keyed',
    description: 'Benchmark echo keyed by user',
    version: '1.0.0',
    validators: { echo: validateEcho },
    create: (ctx) => new BenchActor(ctx),
  });
}

/** The `--kinds-module` entry point. */
export function createKinds(_context: KindModuleContext): ActorKind<Protocol>[] {
  return [benchKind()];
}
