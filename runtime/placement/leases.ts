/**
 * Placement across hosts with NATS KV. Hosts announce themselves with heartbeats in a members
 * bucket; each keyed kind's partitions go to live hosts by rendezvous hashing; and a host serves a
 * partition only while it holds the partition's lease in a leases bucket.
 *
 * The lease protocol, for NATS 2.9 (bucket TTL only, no per-key TTL):
 * - acquire: `create(kind.partition)`, which fails if anyone holds it;
 * - renew: `update(key, value, myLastRevision)`: compare-and-set, never a blind put;
 * - release: `delete(key, myLastRevision)` after the partition is drained;
 * - a lease not renewed disappears with the bucket's TTL.
 * A holder that could not renew stops serving before its lease can expire on the server (it fences
 * itself at `sentAt + ttl - margin`, where `sentAt` is when its last successful write was sent, which
 * is no later than the server stored it), so two hosts never serve one partition at once.
 *
 * KV reads are not read-after-write consistent, so decisions never rest on a read alone: a local
 * view built from watches says what is worth trying, and the compare-and-set write decides.
 */
import type { Logger } from 'pino';
import { ConflictError } from '../errors.js';
import type { KvBucket, KvEntry, KvStore, KvWatch } from '../kv/types.js';
import type { Subjects } from '../subjects.js';
import { rendezvousOwner } from './hash.js';
import type { PartitionListener, Placement, PlacementStats } from './types.js';

export interface LeasePlacementOptions {
  kv: KvStore;
  subjects: Subjects;
  hostId: string;
  /** Keyed kinds this host runs. */
  kinds: readonly string[];
  partitions: number;
  leaseTtlMs: number;
  renewIntervalMs: number;
  heartbeatIntervalMs: number;
  memberTtlMs: number;
  log: Logger;
}

interface MemberView {
  kinds: ReadonlySet<string>;
  /** `performance.now()` when its last heartbeat was seen. */
  lastSeen: number;
}

interface LeaseView {
  owner: string;
  revision: number;
  lastSeen: number;
}

type HeldState = 'acquiring' | 'serving' | 'releasing';

interface HeldLease {
  kind: string;
  partition: number;
  key: string;
  state: HeldState;
  revision: number;
  /** Local monotonic time after which the lease may have expired on the server: stop serving. */
  validUntil: number;
  renewedAt: number;
  renewing: Promise<void> | undefined;
}

interface MemberRecord {
  host: string;
  kinds: string[];
  started_at: number;
}

interface LeaseRecord {
  owner: string;
  kind: string;
  partition: number;
  acquired_at: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const toBytes = (value: unknown): Uint8Array => encoder.encode(JSON.stringify(value));
const fromBytes = <T>(bytes: Uint8Array): T | undefined => {
  try {
    return JSON.parse(decoder.decode(bytes)) as T;
  } catch {
    return undefined;
  }
};
const now = (): number => performance.now();

export class LeasePlacement implements Placement {
  private readonly members = new Map<string, MemberView>();
  private readonly leaseView = new Map<string, LeaseView>();
  private readonly held = new Map<string, HeldLease>();
  private readonly releases = new Set<Promise<void>>();
  private readonly log: Logger;
  private readonly fenceMarginMs: number;
  private readonly startedAt = Date.now();
  private listener: PartitionListener | undefined;
  private membersBucket: KvBucket | undefined;
  private leasesBucket: KvBucket | undefined;
  private watches: KvWatch[] = [];
  private timers: Array<ReturnType<typeof setInterval>> = [];
  private heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private stopping = false;

  constructor(private readonly options: LeasePlacementOptions) {
    if (options.renewIntervalMs * 2 >= options.leaseTtlMs) {
      throw new RangeError(
        'placement.renew_interval_ms must be less than half of placement.lease_ttl_ms',
      );
    }
    this.log = options.log.child({ module: 'placement' });
    // Fence a little before the server could expire the lease, to absorb timer lateness.
    this.fenceMarginMs = Math.min(1000, options.leaseTtlMs * 0.2);
  }

  async start(listener: PartitionListener): Promise<void> {
    this.listener = listener;
    const { kv, subjects, leaseTtlMs, memberTtlMs } = this.options;
    this.membersBucket = await kv.bucket(subjects.bucket('members'), {
      ttlMs: memberTtlMs,
      storage: 'file',
    });
    this.leasesBucket = await kv.bucket(subjects.bucket('leases'), {
      ttlMs: leaseTtlMs,
      storage: 'file',
    });
    this.members.set(this.options.hostId, { kinds: new Set(this.options.kinds), lastSeen: now() });
    await this.heartbeat();
    this.watches.push(await this.membersBucket.watch((entry) => this.onMember(entry)));
    this.watches.push(await this.leasesBucket.watch((entry) => this.onLease(entry)));

    this.heartbeatTimer = this.every(this.options.heartbeatIntervalMs, () => void this.heartbeat());
    this.every(this.options.renewIntervalMs, () => void this.reconcile());
    this.every(Math.max(50, Math.min(500, leaseTtlMs / 10)), () => this.fenceExpired());
    // Give hosts that start together one heartbeat to see each other before claiming partitions,
    // so a cluster coming up does not move every partition twice.
    await new Promise((resolve) => setTimeout(resolve, this.options.heartbeatIntervalMs));
    // Start returns once the first claims are settled, so a lone host serves as soon as it is up.
    await Promise.allSettled(this.reconcile());
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    // Renewal and fencing go on while partitions drain; only heartbeats and new claims stop.
    clearInterval(this.heartbeatTimer);
    clearTimeout(this.retryTimer);
    // Leave the membership first: the others then stop assigning us partitions and take each one
    // the moment its lease is deleted below.
    await this.membersBucket?.delete(this.options.hostId).catch(() => undefined);
    for (const lease of this.held.values()) {
      if (lease.state === 'serving') this.release(lease);
    }
    // Leases still being acquired are released as soon as the create returns (see `acquire`).
    while (this.releases.size > 0 || [...this.held.values()].some((l) => l.state === 'acquiring')) {
      await Promise.race([...this.releases, new Promise((resolve) => setTimeout(resolve, 20))]);
    }
    for (const timer of this.timers) clearInterval(timer);
    for (const watch of this.watches) watch.stop();
    this.watches = [];
  }

  owned(kind: string): ReadonlySet<number> {
    const owned = new Set<number>();
    for (const lease of this.held.values()) {
      if (lease.kind === kind && lease.state !== 'acquiring') owned.add(lease.partition);
    }
    return owned;
  }

  stats(): PlacementStats {
    const owned: Record<string, number> = {};
    for (const kind of this.options.kinds) owned[kind] = this.owned(kind).size;
    return { mode: 'leases', members: this.liveMembers().length, owned };
  }

  private every(ms: number, fn: () => void): ReturnType<typeof setInterval> {
    const timer = setInterval(fn, ms);
    timer.unref();
    this.timers.push(timer);
    return timer;
  }

  private async heartbeat(): Promise<void> {
    if (this.stopping) return;
    const record: MemberRecord = {
      host: this.options.hostId,
      kinds: [...this.options.kinds],
      started_at: this.startedAt,
    };
    try {
      await this.membersBucket?.put(this.options.hostId, toBytes(record));
    } catch (err) {
      this.log.debug({ err }, 'heartbeat failed');
    }
  }

  private onMember(entry: KvEntry): void {
    if (entry.key === this.options.hostId) return;
    if (entry.operation === 'DEL') {
      if (this.members.delete(entry.key)) void this.reconcile();
      return;
    }
    const record = fromBytes<MemberRecord>(entry.value);
    if (record === undefined) return;
    const known = this.members.has(entry.key);
    this.members.set(entry.key, { kinds: new Set(record.kinds), lastSeen: now() });
    if (!known) void this.reconcile();
  }

  private onLease(entry: KvEntry): void {
    if (entry.operation === 'DEL') {
      this.leaseView.delete(entry.key);
      if (!this.held.has(entry.key)) void this.reconcile();
      return;
    }
    const record = fromBytes<LeaseRecord>(entry.value);
    if (record === undefined) return;
    this.leaseView.set(entry.key, {
      owner: record.owner,
      revision: entry.revision,
      lastSeen: now(),
    });
  }

  private liveMembers(kind?: string): string[] {
    const t = now();
    const live: string[] = [];
    for (const [id, member] of this.members) {
      if (kind !== undefined && !member.kinds.has(kind)) continue;
      if (id === this.options.hostId || t - member.lastSeen < this.options.memberTtlMs)
        live.push(id);
    }
    return live;
  }

  /**
   * Compares what this host should own with what it holds and starts the writes that close the
   * gap. Synchronous: every KV write runs in the background with its own per-lease guard, so one
   * slow write (a server restarting) never delays fencing or the other leases.
   */
  private reconcile(): Array<Promise<void>> {
    const claims: Array<Promise<void>> = [];
    if (this.listener === undefined) return claims;
    const t = now();
    if (this.stopping) {
      for (const lease of this.held.values()) {
        if (
          lease.state !== 'acquiring' &&
          t - lease.renewedAt >= this.options.renewIntervalMs * 0.9
        )
          this.renew(lease);
      }
      return claims;
    }
    for (const kind of this.options.kinds) {
      const live = this.liveMembers(kind);
      for (let partition = 0; partition < this.options.partitions; partition++) {
        const key = `${kind}.${partition}`;
        const desired = rendezvousOwner(key, live) === this.options.hostId;
        const lease = this.held.get(key);
        if (lease !== undefined) {
          if (lease.state === 'serving' && !desired) this.release(lease);
          else if (
            lease.state !== 'acquiring' &&
            t - lease.renewedAt >= this.options.renewIntervalMs * 0.9
          ) {
            this.renew(lease);
          }
          continue;
        }
        if (!desired) continue;
        const view = this.leaseView.get(key);
        const free = view === undefined || t - view.lastSeen > this.options.leaseTtlMs;
        if (free || view.owner === this.options.hostId)
          claims.push(this.acquire(kind, partition, key, view));
      }
    }
    return claims;
  }

  private async acquire(
    kind: string,
    partition: number,
    key: string,
    view: LeaseView | undefined,
  ): Promise<void> {
    const bucket = this.leasesBucket;
    const listener = this.listener;
    if (bucket === undefined || listener === undefined) return;
    const lease: HeldLease = {
      kind,
      partition,
      key,
      state: 'acquiring',
      revision: 0,
      validUntil: 0,
      renewedAt: 0,
      renewing: undefined,
    };
    this.held.set(key, lease);
    const record: LeaseRecord = {
      owner: this.options.hostId,
      kind,
      partition,
      acquired_at: Date.now(),
    };
    const sentAt = now();
    try {
      lease.revision = await this.claim(bucket, key, toBytes(record), view);
    } catch (err) {
      this.held.delete(key);
      if (err instanceof ConflictError) {
        // Someone holds it, or the server has not expired a dead holder's lease yet: look again soon.
        this.retrySoon();
      } else {
        this.log.debug({ err, key }, 'lease create failed');
      }
      return;
    }
    lease.validUntil = sentAt + this.options.leaseTtlMs - this.fenceMarginMs;
    lease.renewedAt = sentAt;
    lease.state = 'serving';
    try {
      await listener.acquired(kind, partition);
    } catch (err) {
      this.log.error({ err, key }, 'could not start serving an acquired partition');
    }
    if (this.stopping || now() > lease.validUntil) this.release(lease);
  }

  /**
   * Creates the lease; a lease this same host id left behind (a restart, or a fence while the
   * server was away) is taken back by its revision, and if that key has expired since, created.
   */
  private async claim(
    bucket: KvBucket,
    key: string,
    value: Uint8Array,
    view: LeaseView | undefined,
  ): Promise<number> {
    if (view === undefined || view.owner !== this.options.hostId) return bucket.create(key, value);
    try {
      return await bucket.update(key, value, view.revision);
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
      if (this.leaseView.get(key) === view) this.leaseView.delete(key);
      return bucket.create(key, value);
    }
  }

  private renew(lease: HeldLease): void {
    const bucket = this.leasesBucket;
    if (bucket === undefined || lease.renewing !== undefined) return;
    const record: LeaseRecord = {
      owner: this.options.hostId,
      kind: lease.kind,
      partition: lease.partition,
      acquired_at: Date.now(),
    };
    const sentAt = now();
    lease.renewing = (async () => {
      try {
        lease.revision = await bucket.update(lease.key, toBytes(record), lease.revision);
        lease.validUntil = sentAt + this.options.leaseTtlMs - this.fenceMarginMs;
        lease.renewedAt = sentAt;
      } catch (err) {
        if (err instanceof ConflictError) {
          // The key changed under us: it expired and someone else may hold it now.
          this.fence(lease, 'lease taken over');
        } else {
          this.log.debug({ err, key: lease.key }, 'lease renew failed');
        }
      } finally {
        lease.renewing = undefined;
      }
    })();
  }

  /** Graceful handoff in the background: drain, then delete the lease so the next owner starts. */
  private release(lease: HeldLease): void {
    const listener = this.listener;
    if (listener === undefined || lease.state === 'releasing') return;
    lease.state = 'releasing';
    const done = (async () => {
      try {
        await listener.release(lease.kind, lease.partition);
      } catch (err) {
        this.log.error({ err, key: lease.key }, 'partition release failed');
      }
      if (this.held.get(lease.key) !== lease) return;
      await lease.renewing;
      this.held.delete(lease.key);
      await this.leasesBucket?.delete(lease.key, lease.revision).catch((err: unknown) => {
        this.log.debug({ err, key: lease.key }, 'lease delete failed; it will expire');
      });
    })();
    this.releases.add(done);
    void done.finally(() => this.releases.delete(done));
  }

  private fenceExpired(): void {
    const t = now();
    for (const lease of this.held.values()) {
      if (lease.state !== 'acquiring' && t > lease.validUntil)
        this.fence(lease, 'lease not renewed in time');
    }
  }

  private fence(lease: HeldLease, reason: string): void {
    if (this.held.get(lease.key) !== lease) return;
    this.held.delete(lease.key);
    this.log.warn({ key: lease.key, reason }, 'stopped serving partition');
    this.listener?.lost(lease.kind, lease.partition);
  }

  private retrySoon(): void {
    if (this.retryTimer !== undefined || this.stopping) return;
    this.retryTimer = setTimeout(
      () => {
        this.retryTimer = undefined;
        void this.reconcile();
      },
      Math.min(250, this.options.renewIntervalMs),
    );
    this.retryTimer.unref();
  }
}
