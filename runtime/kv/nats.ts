/**
 * KV on NATS JetStream (`@nats-io/kv`). Buckets keep one value per key (`history: 1`) and expire
 * by the stream's `max_age`, the only TTL NATS 2.9 has. Compare-and-set failures arrive as
 * JetStream "wrong last sequence" API errors and become `ConflictError`.
 */
import {
  JetStreamApiCodes,
  JetStreamApiError,
  jetstreamManager,
  StorageType,
} from '@nats-io/jetstream';
import { Kvm, type KV, type KvEntry as NatsKvEntry } from '@nats-io/kv';
import { nanos, type NatsConnection } from '@nats-io/nats-core';

import { ConflictError } from '../errors.js';
import type { KvBucket, KvBucketOptions, KvEntry, KvStore, KvWatch } from './types.js';
import { checkBucket, checkKey, checkRevision } from './validate.js';

export class NatsKvStore implements KvStore {
  private readonly kvm: Kvm;

  constructor(private readonly connection: NatsConnection) {
    this.kvm = new Kvm(connection);
  }

  async bucket(name: string, options: KvBucketOptions): Promise<KvBucket> {
    checkBucket(name, options);
    const kv = await this.kvm.create(name, {
      ttl: options.ttlMs,
      storage: options.storage === 'memory' ? StorageType.Memory : StorageType.File,
      history: 1,
    });
    await this.reconcileTtl(kv, options.ttlMs);
    return new NatsKvBucket(name, kv);
  }

  /**
   * `Kvm.create` opens an existing bucket as it is. The TTL is what leases depend on, so a bucket
   * made with another TTL (an older deployment, another config) is updated to this one. The
   * storage type cannot be changed on a stream; an existing bucket keeps the one it has.
   */
  private async reconcileTtl(kv: KV, ttlMs: number): Promise<void> {
    const status = await kv.status();
    if (status.ttl === ttlMs) return;
    const jsm = await jetstreamManager(this.connection);
    const maxAge = nanos(ttlMs);
    const { config } = status.streamInfo;
    // The server refuses a duplicate window longer than max_age.
    const duplicateWindow =
      ttlMs > 0 && config.duplicate_window > maxAge ? maxAge : config.duplicate_window;
    await jsm.streams.update(config.name, { max_age: maxAge, duplicate_window: duplicateWindow });
  }
}

class NatsKvBucket implements KvBucket {
  constructor(
    readonly name: string,
    private readonly kv: KV,
  ) {}

  async get(key: string): Promise<KvEntry | null> {
    checkKey(key);
    const entry = await this.kv.get(key);
    // Deletes and purges are stored as marker records; to callers they are absence.
    return entry === null || entry.operation !== 'PUT' ? null : toEntry(entry);
  }

  async put(key: string, value: Uint8Array): Promise<number> {
    checkKey(key);
    return this.kv.put(key, value);
  }

  async create(key: string, value: Uint8Array): Promise<number> {
    checkKey(key);
    try {
      return await this.kv.create(key, value);
    } catch (err) {
      throw this.mapConflict(err, key, `key ${key} exists in bucket ${this.name}`);
    }
  }

  async update(key: string, value: Uint8Array, revision: number): Promise<number> {
    checkKey(key);
    checkRevision('revision', revision);
    try {
      return await this.kv.update(key, value, revision);
    } catch (err) {
      throw this.mapConflict(err, key, `key ${key} in bucket ${this.name} is not at ${revision}`);
    }
  }

  async delete(key: string, previousRevision?: number): Promise<void> {
    checkKey(key);
    if (previousRevision === undefined) {
      await this.kv.delete(key);
      return;
    }
    checkRevision('previousRevision', previousRevision);
    try {
      await this.kv.delete(key, { previousSeq: previousRevision });
    } catch (err) {
      throw this.mapConflict(
        err,
        key,
        `key ${key} in bucket ${this.name} is not at ${previousRevision}`,
      );
    }
  }

  async keys(): Promise<string[]> {
    const keys: string[] = [];
    for await (const key of await this.kv.keys()) keys.push(key);
    return keys;
  }

  async watch(listener: (entry: KvEntry) => void): Promise<KvWatch> {
    // The initial pass replays each key's last record, tombstones included; only live entries are
    // "current". nats.js flags the last replayed record as an update (`isUpdate`), so the cut is
    // made by revision instead: records at or before the stream's end when the watch began.
    const { streamInfo } = await this.kv.status();
    const snapshotEnd = streamInfo.state.last_seq;
    const iter = await this.kv.watch();
    void (async () => {
      for await (const entry of iter) {
        if (entry.operation !== 'PUT' && entry.revision <= snapshotEnd) continue;
        try {
          listener(toEntry(entry));
        } catch (err) {
          // A throwing listener is a bug above us: surface it without ending the watch.
          setTimeout(() => {
            throw err;
          }, 0);
        }
      }
    })().catch((err: unknown) => {
      setTimeout(() => {
        throw err;
      }, 0);
    });
    return { stop: () => iter.stop() };
  }

  private mapConflict(err: unknown, key: string, message: string): unknown {
    if (
      err instanceof JetStreamApiError &&
      (err.code === JetStreamApiCodes.StreamWrongLastSequence ||
        err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
    ) {
      return new ConflictError(message, { cause: err, data: { bucket: this.name, key } });
    }
    return err;
  }
}

function toEntry(entry: NatsKvEntry): KvEntry {
  return {
    key: entry.key,
    value: entry.value,
    revision: entry.revision,
    operation: entry.operation === 'PUT' ? 'PUT' : 'DEL',
  };
}
