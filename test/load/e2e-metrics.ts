/**
 * What the processes under test say about themselves during a measurement: CPU time (from
 * `/proc/<pid>/stat`, or the process's own `process_cpu_seconds_total` when there is no procfs)
 * and the feature cache's hits and misses, scraped from each process's Prometheus `/metrics`.
 * A snapshot is taken before and after each rate; the report shows the differences.
 */
import { processCpuMs } from './processes.js';

/** A process of the system under test (or a server it runs on). */
export interface WatchedProcess {
  name: string;
  pid: number;
  /** Its `/metrics` endpoint, when it serves one. */
  metricsUrl?: string;
}

export interface ProcessSample {
  /** CPU time used so far, ms; NaN when neither procfs nor metrics tell. */
  cpuMs: number;
  cacheHits: number;
  cacheMisses: number;
  /** The user actors' waits for their session view to hold applied feedback: seconds, waits, late. */
  viewWaitSeconds: number;
  viewWaits: number;
  viewLate: number;
}

export type Snapshot = Map<string, ProcessSample>;

/** Sums of the samples of each metric name in a Prometheus text exposition. */
export function parsePrometheus(text: string): Map<string, number> {
  const sums = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    // `name{labels} value [timestamp]`; label values may hold spaces, so split after the '}'.
    const brace = line.indexOf('{');
    const close = brace === -1 ? -1 : line.lastIndexOf('}');
    const name = brace === -1 ? line.slice(0, line.indexOf(' ')) : line.slice(0, brace);
    const rest = (close === -1 ? line.slice(name.length) : line.slice(close + 1)).trim();
    const value = Number(rest.split(' ')[0]);
    if (name === '' || !Number.isFinite(value)) continue;
    sums.set(name, (sums.get(name) ?? 0) + value);
  }
  return sums;
}

async function scrape(url: string): Promise<Map<string, number> | undefined> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
    if (!response.ok) return undefined;
    return parsePrometheus(await response.text());
  } catch {
    return undefined;
  }
}

const CACHE_HITS = 'recsys_features_cache_hits_total';
const CACHE_MISSES = 'recsys_features_cache_misses_total';
const CPU_SECONDS = 'recsys_process_cpu_seconds_total';
const VIEW_WAIT = 'recsys_user_session_view_wait_seconds';
const VIEW_LATE = 'recsys_user_session_view_late_total';

export async function snapshot(processes: readonly WatchedProcess[]): Promise<Snapshot> {
  const entries = await Promise.all(
    processes.map(async (p): Promise<[string, ProcessSample]> => {
      const metrics = p.metricsUrl === undefined ? undefined : await scrape(p.metricsUrl);
      const fromProc = processCpuMs(p.pid);
      const fromMetrics = metrics?.get(CPU_SECONDS);
      return [
        p.name,
        {
          cpuMs: fromProc ?? (fromMetrics === undefined ? NaN : fromMetrics * 1000),
          cacheHits: metrics?.get(CACHE_HITS) ?? 0,
          cacheMisses: metrics?.get(CACHE_MISSES) ?? 0,
          viewWaitSeconds: metrics?.get(`${VIEW_WAIT}_sum`) ?? 0,
          viewWaits: metrics?.get(`${VIEW_WAIT}_count`) ?? 0,
          viewLate: metrics?.get(VIEW_LATE) ?? 0,
        },
      ];
    }),
  );
  const self = process.cpuUsage();
  entries.push([
    'load generator',
    {
      cpuMs: (self.user + self.system) / 1000,
      cacheHits: 0,
      cacheMisses: 0,
      viewWaitSeconds: 0,
      viewWaits: 0,
      viewLate: 0,
    },
  ]);
  return new Map(entries);
}

export interface UsageBetween {
  /** CPU of each process in % of one core over the interval, by process name. */
  cpuPercent: Record<string, number>;
  /** Feature cache hits / (hits + misses) over the interval, all processes; NaN without reads. */
  cacheHitRate: number;
  cacheReads: number;
  /**
   * Mean time `observe` waited for the session view the ranker reads to hold the feedback it
   * applied (ms), and the share of waits that ended late (the view had not caught up in time).
   */
  sessionViewWaitMs: number;
  sessionViewLateRate: number;
}

export function usageBetween(before: Snapshot, after: Snapshot, elapsedMs: number): UsageBetween {
  const cpuPercent: Record<string, number> = {};
  let hits = 0;
  let misses = 0;
  let waitSeconds = 0;
  let waits = 0;
  let late = 0;
  for (const [name, end] of after) {
    const start = before.get(name);
    if (start === undefined) continue;
    cpuPercent[name] = elapsedMs > 0 ? ((end.cpuMs - start.cpuMs) / elapsedMs) * 100 : NaN;
    hits += end.cacheHits - start.cacheHits;
    misses += end.cacheMisses - start.cacheMisses;
    waitSeconds += end.viewWaitSeconds - start.viewWaitSeconds;
    waits += end.viewWaits - start.viewWaits;
    late += end.viewLate - start.viewLate;
  }
  const reads = hits + misses;
  return {
    cpuPercent,
    cacheHitRate: reads > 0 ? hits / reads : NaN,
    cacheReads: reads,
    sessionViewWaitMs: waits > 0 ? (waitSeconds / waits) * 1000 : NaN,
    sessionViewLateRate: waits > 0 ? late / waits : NaN,
  };
}
