/**
 * Change notices of the online store: a stream writer that has stored new values of some entities
 * says so on `<prefix>.features.changed.<view>`, and every in-process cache that holds one of them
 * drops it, so a hot entity's next read sees the new value at once instead of after the cache TTL.
 *
 * Plain publish/subscribe, at most once: a notice lost on the way costs freshness up to the cache
 * TTL, never correctness, which is why the cache keeps a TTL at all.
 */
import { assertPrefix, assertToken } from '../subjects.js';
import type { Subscription, Transport } from '../transport/types.js';

/** The payload of a notice (JSON): the entities of the view whose stored rows changed. */
export interface FeatureChangeNotice {
  view: string;
  entities: string[];
}

export type FeatureChangeListener = (notice: FeatureChangeNotice) => void;

export function featureChangeSubject(prefix: string, view: string): string {
  return `${assertPrefix(prefix)}.features.changed.${assertToken('view', view)}`;
}

export class FeatureChanges {
  private readonly encoder = new TextEncoder();
  private readonly decoder = new TextDecoder();

  constructor(
    private readonly transport: Transport,
    private readonly prefix: string,
  ) {}

  /** Tells every cache that these entities of `view` changed. */
  publish(view: string, entities: readonly string[]): void {
    if (entities.length === 0) return;
    const notice: FeatureChangeNotice = { view, entities: [...entities] };
    this.transport.publish(
      featureChangeSubject(this.prefix, view),
      this.encoder.encode(JSON.stringify(notice)),
    );
  }

  /** Calls `listener` with every notice of any view; malformed notices are passed over. */
  subscribe(listener: FeatureChangeListener): Subscription {
    const subject = `${assertPrefix(this.prefix)}.features.changed.*`;
    return this.transport.subscribe(subject, (msg) => {
      let notice: unknown;
      try {
        notice = JSON.parse(this.decoder.decode(msg.data));
      } catch {
        return;
      }
      if (!isNotice(notice)) return;
      listener(notice);
    });
  }
}

function isNotice(value: unknown): value is FeatureChangeNotice {
  if (typeof value !== 'object' || value === null) return false;
  const { view, entities } = value as Record<string, unknown>;
  return (
    typeof view === 'string' &&
    Array.isArray(entities) &&
    entities.every((entity) => typeof entity === 'string')
  );
}
