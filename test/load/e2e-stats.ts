/**
 * Latency percentiles as the end-to-end report shows them (p50, p95, p99, max, in ms), from
 * samples kept whole and sorted once, like the harness's `LatencyRecorder` (which stops at p90).
 */
import { percentile } from './stats.js';

/** Percentiles of one series, milliseconds. */
export interface Percentiles {
  count: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export class Recorder {
  private samples = new Float64Array(1 << 12);
  private size = 0;

  get count(): number {
    return this.size;
  }

  /** Records one latency in milliseconds. */
  record(ms: number): void {
    if (this.size === this.samples.length) {
      const grown = new Float64Array(this.samples.length * 2);
      grown.set(this.samples);
      this.samples = grown;
    }
    this.samples[this.size++] = ms;
  }

  summary(): Percentiles {
    const sorted = this.samples.slice(0, this.size).sort();
    let sum = 0;
    for (const value of sorted) sum += value;
    return {
      count: this.size,
      mean: this.size === 0 ? 0 : sum / this.size,
      p50: percentile(sorted, 0.5),
      p95: percentile(sorted, 0.95),
      p99: percentile(sorted, 0.99),
      max: this.size === 0 ? 0 : (sorted[this.size - 1] ?? 0),
    };
  }
}
