/**
 * Compaction: folds a shard's delta into a new base file, so the delta stays small and searches
 * stay one HNSW walk plus a short exact scan.
 *
 * The new file is the old graph loaded in full, with the removed rows taken out and the delta's
 * items added under fresh keys: the cost is the delta's inserts plus one read and one write of the
 * file, not a rebuild of the whole shard (the base's vectors are not kept anywhere else). Rows keep
 * their keys, so a removed row leaves a `null` id; a fresh `recsys index` build starts clean.
 *
 * usearch is synchronous, so the build runs in a worker thread of its own ({@link runCompaction}),
 * never on the actor's event loop.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { Piscina } from 'piscina';
import { newIndex, shardFiles } from './index-file.js';
import type { ShardFiles, ShardItems, ShardManifest } from './index-file.js';
import { resolveWorkerFile } from './pool.js';

/** What the compaction worker is handed: plain data only (it crosses a thread). */
export interface CompactionTask {
  manifest: ShardManifest;
  /** The base files now served. */
  files: ShardFiles;
  /** Folder the new generation is written to (created). */
  outDir: string;
  expansionSearch: number;
  /** Base ids to drop: deleted, or replaced by an upsert. */
  remove: string[];
  upsertIds: string[];
  upsertCategories: (string | null)[];
  /** Row-major, `upsertIds.length × dims`. */
  upsertVectors: Float32Array;
  /** The last item-events sequence the folded delta holds. */
  streamSeq: number;
}

export interface CompactionResult {
  manifest: ShardManifest;
  files: ShardFiles;
}

function writeAtomicSync(path: string, text: string): void {
  writeFileSync(`${path}.partial`, text);
  renameSync(`${path}.partial`, path);
}

/** Builds the next generation of a shard. Synchronous: call it in a worker thread. */
export function compactShardSync(task: CompactionTask): CompactionResult {
  const started = performance.now();
  const { manifest, files } = task;
  const items = JSON.parse(readFileSync(files.items, 'utf8')) as ShardItems;
  const index = newIndex(manifest, task.expansionSearch);
  index.load(files.index);
  const ids = items.ids.slice();
  const hasCategories = items.categories !== null || task.upsertCategories.some((c) => c !== null);
  const categories: (string | null)[] | null = hasCategories
    ? (items.categories?.slice() ?? ids.map(() => null))
    : null;
  const rowOf = new Map<string, number>();
  ids.forEach((id, row) => {
    if (id !== null) rowOf.set(id, row);
  });
  for (const id of task.remove) {
    const row = rowOf.get(id);
    if (row === undefined) continue;
    index.remove(BigInt(row));
    ids[row] = null;
    if (categories !== null) categories[row] = null;
  }
  const added = task.upsertIds.length;
  if (added > 0) {
    const keys = new BigUint64Array(added);
    for (let i = 0; i < added; i++) {
      keys[i] = BigInt(ids.length);
      ids.push(task.upsertIds[i]!);
      categories?.push(task.upsertCategories[i] ?? null);
    }
    // One thread: usearch's parallel insert of a small batch into a built graph leaves some of the
    // new nodes unreachable (a query at an item's own vector then misses it, which a serial insert
    // never did in the same runs), and a delta is small enough that one thread costs little. It
    // also leaves the other cores to the searches this shard keeps serving meanwhile.
    index.add(keys, task.upsertVectors, 1);
  }
  mkdirSync(task.outDir, { recursive: true });
  const out = shardFiles(task.outDir, manifest.shard);
  const generation = (manifest.generation ?? 0) + 1;
  const next: ShardManifest = {
    ...manifest,
    count: index.size(),
    rows: ids.length,
    generation,
    baseVersion: manifest.baseVersion ?? `${manifest.modelVersion}@${manifest.builtAt}`,
    streamSeq: task.streamSeq,
    builtAt: new Date().toISOString(),
    buildSeconds: 0,
  };
  index.save(`${out.index}.partial`);
  renameSync(`${out.index}.partial`, out.index);
  writeAtomicSync(out.items, JSON.stringify({ ids, categories } satisfies ShardItems));
  next.buildSeconds = (performance.now() - started) / 1000;
  // The manifest goes last: its presence says the generation is complete.
  writeAtomicSync(out.manifest, `${JSON.stringify(next, null, 2)}\n`);
  return { manifest: next, files: out };
}

/**
 * Runs {@link compactShardSync} in a worker thread started for it and stopped after, so the
 * caller's event loop only waits.
 */
export async function runCompaction(task: CompactionTask): Promise<CompactionResult> {
  const file = resolveWorkerFile(import.meta.url, 'compact-worker');
  const pool = new Piscina<CompactionTask, CompactionResult>({
    filename: file.filename,
    execArgv: file.execArgv,
    minThreads: 1,
    maxThreads: 1,
  });
  try {
    return await pool.run(task, { transferList: [task.upsertVectors.buffer as ArrayBuffer] });
  } finally {
    await pool.destroy();
  }
}
