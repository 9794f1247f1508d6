/**
 * A piscina worker of an item shard. It opens the shard's index file once, at module load, as a
 * memory-mapped view (an index object cannot cross threads; the file's pages are shared), and then
 * answers one task at a time.
 */
import { readFileSync } from 'node:fs';
import { threadId, workerData } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { openShardSync } from './index-file.js';
import type { ShardFiles, ShardItems, ShardManifest } from './index-file.js';
import { searchShardRows } from './shard-search.js';
import type { ShardHits, ShardQuery } from './shard-search.js';

/** What the pool hands every worker at start-up. */
export interface SearchWorkerData {
  manifest: ShardManifest;
  files: ShardFiles;
  expansionSearch: number;
  /** Honour `{op: 'exit'}`, which ends the thread under its task: for tests of worker death. */
  testHooks?: boolean;
}

export interface WorkerInfo {
  count: number;
  dims: number;
  threadId: number;
}

export type SearchTask = ({ op: 'search' } & ShardQuery) | { op: 'info' } | { op: 'exit' };

/** A search answers packed rows and scores (see {@link ShardHits}); `info` answers {@link WorkerInfo}. */
export type SearchTaskResult = ShardHits | WorkerInfo;

const data = workerData as SearchWorkerData;
const items = JSON.parse(readFileSync(data.files.items, 'utf8')) as ShardItems;
const shard = openShardSync(data.manifest, data.files, items, data.expansionSearch);

/**
 * Hands `hits` back by transfer: both arrays share one buffer, which moves to the caller's thread
 * instead of being copied (the worker never touches it again).
 */
function moved(hits: ShardHits): ShardHits {
  const buffers =
    hits.rows.buffer === hits.scores.buffer
      ? [hits.rows.buffer]
      : [hits.rows.buffer, hits.scores.buffer];
  const transferable = { [Piscina.transferableSymbol]: buffers, [Piscina.valueSymbol]: hits };
  return Piscina.move(
    transferable as unknown as Parameters<typeof Piscina.move>[0],
  ) as unknown as ShardHits;
}

export default function run(task: SearchTask): SearchTaskResult {
  if (task.op === 'info') {
    return { count: shard.index.size(), dims: shard.manifest.dims, threadId };
  }
  if (task.op === 'exit') {
    if (data.testHooks !== true) throw new Error('exit is a test hook, not enabled');
    // In a worker thread this ends the thread, not the process.
    process.exit(1);
  }
  return moved(searchShardRows(shard, task));
}
