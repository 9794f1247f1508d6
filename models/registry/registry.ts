/**
 * The model registry: which version of each model slot serves. A slot is a role a model plays,
 * such as `ranker.gbdt` or `ranker.deepfm`; its entry names the artefact folder of the version that
 * serves it. The registry is a KV bucket (`<prefix>-models`: NATS KV in a deployment, memory in the
 * embedded one), so every replica that serves a slot sees a promotion at once and switches without
 * a restart, and `nats kv get recsys-models ranker.gbdt` shows what serves.
 *
 * Entries are JSON: `{slot, version, dir, promoted_at}`. A promotion is one put; it does not check
 * the artefact (the CLI that promotes does, before it writes).
 */
import { BadRequestError } from '../../runtime/errors.js';
import { assertPrefix } from '../../runtime/subjects.js';
import type { KvBucket, KvStore, KvWatch } from '../../runtime/kv/types.js';

export interface RegistryEntry {
  slot: string;
  /** The artefact's version (its folder name). */
  version: string;
  /** Where the artefact is, as the serving hosts see it (a path they can read). */
  dir: string;
  /** ISO time of the promotion. */
  promoted_at: string;
}

/** Slot names: dot-separated tokens of `[A-Za-z0-9_-]`, e.g. `ranker.gbdt`. */
const SLOT_PATTERN = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

export function registryBucketName(prefix: string): string {
  return `${assertPrefix(prefix).replaceAll('.', '_')}-models`;
}

export function checkSlot(slot: string): string {
  if (!SLOT_PATTERN.test(slot) || slot.length > 128) {
    throw new BadRequestError(
      'slot',
      'must be dot-separated tokens of [A-Za-z0-9_-], such as ranker.gbdt',
    );
  }
  return slot;
}

function decodeEntry(value: Uint8Array): RegistryEntry | null {
  try {
    const entry = JSON.parse(new TextDecoder().decode(value)) as Partial<RegistryEntry>;
    if (
      typeof entry.slot === 'string' &&
      typeof entry.version === 'string' &&
      typeof entry.dir === 'string' &&
      typeof entry.promoted_at === 'string'
    ) {
      return entry as RegistryEntry;
    }
  } catch {
    // A value another tool wrote by hand: not an entry.
  }
  return null;
}

export class ModelRegistry {
  private constructor(private readonly bucket: KvBucket) {}

  static async open(kv: KvStore, prefix: string): Promise<ModelRegistry> {
    // No TTL: a promotion stands until the next one.
    return new ModelRegistry(await kv.bucket(registryBucketName(prefix), { ttlMs: 0 }));
  }

  async promote(slot: string, version: string, dir: string): Promise<RegistryEntry> {
    const entry: RegistryEntry = {
      slot: checkSlot(slot),
      version,
      dir,
      promoted_at: new Date().toISOString(),
    };
    await this.bucket.put(slot, new TextEncoder().encode(JSON.stringify(entry)));
    return entry;
  }

  /** The entry of `slot`, or null when nothing was promoted to it (or its value is not an entry). */
  async current(slot: string): Promise<RegistryEntry | null> {
    const found = await this.bucket.get(checkSlot(slot));
    return found === null ? null : decodeEntry(found.value);
  }

  async list(): Promise<RegistryEntry[]> {
    const entries: RegistryEntry[] = [];
    for (const key of (await this.bucket.keys()).sort()) {
      const entry = await this.current(key);
      if (entry !== null) entries.push(entry);
    }
    return entries;
  }

  /** Calls `listener` with the current entry of `slot` (if any), then with every promotion. */
  watch(slot: string, listener: (entry: RegistryEntry) => void): Promise<KvWatch> {
    checkSlot(slot);
    return this.bucket.watch((change) => {
      if (change.key !== slot || change.operation !== 'PUT') return;
      const entry = decodeEntry(change.value);
      if (entry !== null) listener(entry);
    });
  }
}
