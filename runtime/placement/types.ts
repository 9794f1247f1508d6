/**
 * Placement decides which host serves which partition of each keyed actor kind. The host is told
 * when to start serving a partition and when to hand it over; placement guarantees that at most one
 * host serves a partition at any instant.
 */

export interface PartitionListener {
  /** Start serving: subscribe the partition's subject. */
  acquired(kind: string, partition: number): Promise<void>;
  /**
   * Hand over gracefully: stop taking messages, finish those taken, deactivate the partition's
   * actors (state written behind). Placement releases the lease only after this resolves.
   */
  release(kind: string, partition: number): Promise<void>;
  /** Ownership was lost without a handover (lease not renewed in time): stop serving at once. */
  lost(kind: string, partition: number): void;
}

export interface PlacementStats {
  /** `local` (one process owns everything) or `leases` (NATS KV leases). */
  mode: 'local' | 'leases';
  members: number;
  owned: Record<string, number>;
}

export interface Placement {
  start(listener: PartitionListener): Promise<void>;
  /** Releases every partition (each through `listener.release`) and leaves the membership. */
  stop(): Promise<void>;
  /** Partitions of `kind` this host currently serves. */
  owned(kind: string): ReadonlySet<number>;
  stats(): PlacementStats;
}
