/**
 * Searches on the actor's own thread (`items.workers: 0`). A search of a shard of a few hundred
 * thousand vectors takes about 0.1 ms; handing it to a worker thread costs a thread wake-up each
 * way on top of that. Where several shards share a process on a machine of few cores, the hand-off
 * costs more than it spares the event loop, and searching inline serves more queries per core.
 * Elsewhere, worker threads keep the event loop free for the mailbox and heartbeats.
 */
import { readFileSync } from 'node:fs';
import { threadId } from 'node:worker_threads';
import { openShardSync } from './index-file.js';
import type { OpenShard, ShardItems } from './index-file.js';
import type {
  SearchTask,
  SearchTaskResult,
  SearchWorkerData,
  WorkerInfo,
} from './search-worker.js';
import { searchShardRows } from './shard-search.js';

/** What an item shard searches through: a pool of worker threads, or this thread. */
export interface ShardSearcher {
  run(task: SearchTask): Promise<SearchTaskResult>;
  /** Resolves once the index is open, with what each searching thread reports. */
  ready(): Promise<WorkerInfo[]>;
  /** Resolves once the searches already handed over are answered. */
  close(): Promise<void>;
}

export class InlineSearcher implements ShardSearcher {
  private readonly shard: OpenShard;

  constructor(data: SearchWorkerData) {
    const items = JSON.parse(readFileSync(data.files.items, 'utf8')) as ShardItems;
    this.shard = openShardSync(data.manifest, data.files, items, data.expansionSearch);
  }

  run(task: SearchTask): Promise<SearchTaskResult> {
    if (task.op === 'info') return Promise.resolve(this.info());
    if (task.op === 'exit') return Promise.reject(new Error('exit is a worker test hook'));
    // Each search waits for a turn of the event loop of its own, as a worker's answer would: a
    // caller that keeps asking can then never starve timers (heartbeats, leases) and I/O.
    return new Promise((resolve, reject) => {
      setImmediate(() => {
        try {
          resolve(searchShardRows(this.shard, task));
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      });
    });
  }

  ready(): Promise<WorkerInfo[]> {
    return Promise.resolve([this.info()]);
  }

  close(): Promise<void> {
    // Searches run to completion synchronously: none is ever left in flight.
    return Promise.resolve();
  }

  private info(): WorkerInfo {
    return { count: this.shard.index.size(), dims: this.shard.manifest.dims, threadId };
  }
}
