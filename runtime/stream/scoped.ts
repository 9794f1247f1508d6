/**
 * One node's view of a stream store, which its cluster may share: it remembers the readers opened
 * through it, so the node can stop those still running when it shuts down, after its actors have
 * stopped theirs and before its connection closes. In memory nothing else would end them; on NATS
 * the closing connection would, but without waiting for running handlers, so their
 * acknowledgements would be lost and the messages delivered again.
 */
import { UnavailableError } from '../errors.js';
import type { Headers } from '../transport/types.js';
import type {
  ConsumeOptions,
  EventStream,
  PublishAck,
  ReadFrom,
  StreamHandler,
  StreamInfo,
  StreamOptions,
  StreamReader,
  StreamStore,
} from './types.js';

export class ScopedStreamStore implements StreamStore {
  private readonly readers = new Set<StreamReader>();
  private closed = false;

  constructor(private readonly store: StreamStore) {}

  async stream(name: string, options: StreamOptions): Promise<EventStream> {
    this.assertOpen();
    return new ScopedEventStream(await this.store.stream(name, options), this);
  }

  /** Stops every reader opened through this view and still running; later opens reject. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.readers].map((reader) => reader.stop()));
  }

  assertOpen(): void {
    if (this.closed)
      throw new UnavailableError('the node is shutting down: its streams are closed');
  }

  async track(opening: Promise<StreamReader>): Promise<StreamReader> {
    const reader = await opening;
    if (this.closed) {
      await reader.stop();
      this.assertOpen();
    }
    this.readers.add(reader);
    return {
      stop: async () => {
        await reader.stop();
        this.readers.delete(reader);
      },
    };
  }
}

class ScopedEventStream implements EventStream {
  readonly name: string;

  constructor(
    private readonly stream: EventStream,
    private readonly scope: ScopedStreamStore,
  ) {
    this.name = stream.name;
  }

  publish(
    subject: string,
    data: Uint8Array,
    options?: { msgId?: string; headers?: Headers },
  ): Promise<PublishAck> {
    return this.stream.publish(subject, data, options);
  }

  async read(
    filter: string,
    from: ReadFrom,
    handler: StreamHandler,
    options?: { onError?: (err: Error) => void },
  ): Promise<StreamReader> {
    this.scope.assertOpen();
    return this.scope.track(this.stream.read(filter, from, handler, options));
  }

  seqAtTime(timeMs: number): Promise<number> {
    return this.stream.seqAtTime(timeMs);
  }

  async consume(
    durable: string,
    handler: StreamHandler,
    options?: ConsumeOptions,
  ): Promise<StreamReader> {
    this.scope.assertOpen();
    return this.scope.track(this.stream.consume(durable, handler, options));
  }

  info(): Promise<StreamInfo> {
    return this.stream.info();
  }

  lastSeqOf(subject: string): Promise<number> {
    return this.stream.lastSeqOf(subject);
  }
}
