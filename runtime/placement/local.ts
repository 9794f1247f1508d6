/**
 * Placement for the embedded mode: the only host owns every partition of every keyed kind.
 */
import type { Placement, PartitionListener, PlacementStats } from './types.js';

export class LocalPlacement implements Placement {
  private readonly ownedByKind = new Map<string, Set<number>>();
  private listener: PartitionListener | undefined;

  constructor(
    private readonly kinds: readonly string[],
    private readonly partitions: number,
  ) {}

  async start(listener: PartitionListener): Promise<void> {
    this.listener = listener;
    for (const kind of this.kinds) {
      const owned = new Set<number>();
      this.ownedByKind.set(kind, owned);
      for (let p = 0; p < this.partitions; p++) {
        await listener.acquired(kind, p);
        owned.add(p);
      }
    }
  }

  async stop(): Promise<void> {
    const listener = this.listener;
    if (listener === undefined) return;
    await Promise.all(
      [...this.ownedByKind].flatMap(([kind, owned]) =>
        [...owned].map(async (p) => {
          owned.delete(p);
          await listener.release(kind, p);
        }),
      ),
    );
  }

  owned(kind: string): ReadonlySet<number> {
    return this.ownedByKind.get(kind) ?? new Set();
  }

  stats(): PlacementStats {
    const owned: Record<string, number> = {};
    for (const [kind, set] of this.ownedByKind) owned[kind] = set.size;
    return { mode: 'local', members: 1, owned };
  }
}
