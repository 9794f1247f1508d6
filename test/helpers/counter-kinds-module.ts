/**
 * A `--kinds-module` for host child processes in integration tests: the test counter, with its
 * state written behind to a NATS KV bucket so it survives partition handoffs between processes,
 * and the echo kind.
 */
import type { KindModuleContext } from '../../runtime/cli/kinds.js';
import { NatsKvStore } from '../../runtime/kv/nats.js';
import { Subjects } from '../../runtime/subjects.js';
import { NatsTransport } from '../../runtime/transport/nats.js';
import type { CounterStore } from './test-kinds.js';
import { counterKind, echoKind } from './test-kinds.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

async function natsCounterStore(context: KindModuleContext): Promise<CounterStore> {
  const transport = await NatsTransport.connect({
    servers: context.config.nats.url,
    name: 'counter-store',
  });
  const bucket = await new NatsKvStore(transport.connection).bucket(
    new Subjects(context.config.deployment.prefix).bucket('counter-state'),
    { ttlMs: 0 },
  );
  return {
    async load(key) {
      const entry = await bucket.get(encodeURIComponent(key).replaceAll('%', '_'));
      return entry === null
        ? undefined
        : (JSON.parse(decoder.decode(entry.value)) as { total: number; activations: number });
    },
    async save(key, value) {
      await bucket.put(
        encodeURIComponent(key).replaceAll('%', '_'),
        encoder.encode(JSON.stringify(value)),
      );
    },
  };
}

export async function createKinds(context: KindModuleContext) {
  return [counterKind(await natsCounterStore(context)), echoKind()];
}
