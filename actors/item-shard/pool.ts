/**
 * The worker pool of one shard. Worker files are TypeScript in this repository: compiled, the pool
 * loads `search-worker.js` beside this module; under tsx or vitest only the `.ts` exists, and the
 * workers are started with tsx's loader so they can import it.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { UnavailableError } from '../../runtime/errors.js';
import type {
  SearchTask,
  SearchTaskResult,
  SearchWorkerData,
  WorkerInfo,
} from './search-worker.js';

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
  /** Told of pool-level errors (a worker failing outside a task); they must not crash the host. */
  onError?: (err: unknown) => void;
}

/**
 * The threads of one shard file. A worker that dies (a crash in native code, `terminate()`) fails
 * only the query it was running, with a retryable `unavailable` error; piscina starts a new
 * thread in its place and the queries queued behind it run there.
 */
export class SearchPool {
  private readonly pool: Piscina<SearchTask, SearchTaskResult>;
  private readonly workers: number;
  private inFlight = 0;
  private drained: (() => void) | undefined;
  private closing: Promise<void> | undefined;

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
      // Nothing reads piscina's run and wait time histograms; recording them costs two clock
      // reads and two histogram updates per search on this thread.
      recordTiming: false,
    });
    this.workers = options.workers;
    const onError = options.onError ?? (() => undefined);
    this.pool.on('error', onError);
  }

  get threads(): number {
    return this.pool.threads.length;
  }

  /** Searches (or info tasks) sent and not yet answered. */
  get pending(): number {
    return this.inFlight;
  }

  /** The worker threads themselves (tests kill one with `terminate()`). */
  get workerThreads(): readonly { terminate(): Promise<number> }[] {
    return this.pool.threads;
  }

  async run(task: SearchTask, signal?: AbortSignal): Promise<SearchTaskResult> {
    if (this.closing !== undefined) throw new UnavailableError('the search pool is closed');
    this.inFlight++;
    try {
      return await this.pool.run(task, signal === undefined ? {} : { signal });
    } catch (err) {
      // piscina's words for a thread that went away under the task; anything else is the task's.
      if (err instanceof Error && err.message.startsWith('worker exited')) {
        throw new UnavailableError(`a search worker died under the query (${err.message})`, {
          cause: err,
        });
      }
      throw err;
    } finally {
      this.inFlight--;
      if (this.inFlight === 0) this.drained?.();
    }
  }

  /**
   * Resolves once every thread has its view of the file open, with what each one reports. Info
   * tasks go out one per thread at a time until every thread has answered: a thread answers only
   * once its module (which opens the file) has loaded, so distinct answers mean distinct ready
   * threads.
   */
  async ready(): Promise<WorkerInfo[]> {
    const seen = new Map<number, WorkerInfo>();
    for (let attempt = 0; seen.size < this.workers; attempt++) {
      if (attempt > 100) throw new Error(`only ${seen.size} of ${this.workers} workers answered`);
      const infos = await Promise.all(
        Array.from({ length: this.workers }, () => this.run({ op: 'info' })),
      );
      for (const info of infos) {
        if ('threadId' in info) seen.set(info.threadId, info);
      }
    }
    return [...seen.values()];
  }

  /**
   * Stops the threads once the tasks already sent are answered; no new task is taken meanwhile.
   * This is how a pool is retired after a compaction: the queries it still runs are not dropped.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.inFlight > 0) {
        await new Promise<void>((resolve) => {
          this.drained = resolve;
        });
      }
      await this.pool.destroy();
    })();
    return this.closing;
  }
}
