/**
 * Compacted generations of a shard on disk. Each compaction writes `shard-<s>-g<n>-<random>/` under
 * the compaction folder, its manifest last; a replica that starts opens the newest complete one
 * built on its index (same base version) rather than the original file, and reads the item events
 * from the sequence that generation holds. So a restart replays only what came after the last
 * compaction, and the delta survives it.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { indexVersionOf, readShardManifest } from './index-file.js';
import type { ShardManifest } from './index-file.js';

export interface ShardGeneration {
  dir: string;
  manifest: ShardManifest;
}

/** `shard-<s>-g<n>-<random>`: the folder of generation n of shard s. */
export function generationFolderName(shard: number, generation: number, token: string): string {
  return `shard-${shard}-g${generation}-${token}`;
}

/**
 * The newest complete generation of `shard` in `compactDir` that was compacted from the index
 * whose first generation is `base`, or `undefined` when there is none. A folder without its
 * manifest (a compaction cut short) or with an unreadable one is passed over.
 */
export async function newestGeneration(
  compactDir: string,
  shard: number,
  base: ShardManifest,
): Promise<ShardGeneration | undefined> {
  let names: string[];
  try {
    names = await readdir(compactDir);
  } catch {
    return undefined;
  }
  const baseVersion = indexVersionOf(base);
  const pattern = new RegExp(`^shard-${shard}-g(\\d+)-[0-9a-f]+$`);
  let best: ShardGeneration | undefined;
  for (const name of names) {
    if (!pattern.test(name)) continue;
    const dir = join(compactDir, name);
    let manifest: ShardManifest;
    try {
      manifest = await readShardManifest(dir, shard);
    } catch {
      continue;
    }
    if (manifest.baseVersion !== baseVersion) continue;
    if (best === undefined || isNewer(manifest, best.manifest)) best = { dir, manifest };
  }
  return best;
}

function isNewer(a: ShardManifest, b: ShardManifest): boolean {
  const seqA = a.streamSeq ?? 0;
  const seqB = b.streamSeq ?? 0;
  if (seqA !== seqB) return seqA > seqB;
  return (a.generation ?? 0) > (b.generation ?? 0);
}
