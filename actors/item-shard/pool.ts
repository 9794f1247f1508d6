/**
 * The worker pool of one shard. Worker files are TypeScript in this repository: compiled, the pool
 * loads `search-worker.js` beside this module; under tsx or vitest only the `.ts` exists, and the
 * workers are started with tsx's loader so they can import it.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { SearchTask, SearchTaskResult, SearchWorkerData } from './search-worker.js';

export interface WorkerFile {
  filename: string;
  execArgv: string[];
}

/**
 * Finds a worker module named `name` beside `base` (an `import.meta.url`): the `.js` file when it
 * exists (running from `dist/`), else the `.ts` file loaded through tsx.
 */
export function resolveWorkerFile(base: string, name: string): WorkerFile {
  const js = fileURLToPath(new URL(`./${name}.js`, base));
  if (existsSync(js)) return { filename: js, execArgv: [] };
  const ts = fileURLToPath(new URL(`./${name}.ts`, base));
  if (existsSync(ts)) return { filename: ts, execArgv: ['--import', 'tsx'] };
  throw new Error(`worker module ${name} not found beside ${fileURLToPath(base)}`);
}

export interface SearchPoolOptions {
  workerData: SearchWorkerData;
  /** Threads, all started at once and kept: each holds an open view of the index. */
  workers: number;
}

export class SearchPool {
  private readonly pool: Piscina<SearchTask, SearchTaskResult>;

  constructor(options: SearchPoolOptions) {
    if (!Number.isInteger(options.workers) || options.workers < 1) {
      throw new RangeError('workers must be a positive integer');
    }
    const file = resolveWorkerFile(import.meta.url, 'search-worker');
    this.pool = new Piscina<SearchTask, SearchTaskResult>({
      filename: file.filename,
      execArgv: file.execArgv,
      workerData: options.workerData,
      minThreads: options.workers,
      maxThreads: options.workers,
      // Workers hold the index open; an idle timeout would only make the next query pay to reopen it.
      idleTimeout: Number.POSITIVE_INFINITY,
      // A query waits behind at most a few others; the actor's mailbox bounds the rest.
      concurrentTasksPerWorker: 1,
    });
  }

  get threads(): number {
    return this.pool.threads.length;
  }

  run(task: SearchTask, signal?: AbortSignal): Promise<SearchTaskResult> {
    return this.pool.run(task, signal === undefined ? {} : { signal });
  }

  close(): Promise<void> {
    return this.pool.destroy();
  }
}
