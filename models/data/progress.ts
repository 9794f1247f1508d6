/**
 * A tiny progress bar for long data jobs. On a terminal it redraws one line (at most ten times a
 * second); elsewhere (a log file, CI) it prints a line every 10% so logs stay short.
 */

export interface ProgressStream {
  write(chunk: string): boolean;
  readonly isTTY?: boolean;
}

export interface ProgressBarOptions {
  label: string;
  total: number;
  /** @default process.stderr */
  stream?: ProgressStream;
  /** Width of the bar in characters. @default 30 */
  width?: number;
  /** Clock in ms, for tests. @default performance.now */
  now?: () => number;
}

export class ProgressBar {
  private readonly stream: ProgressStream;
  private readonly width: number;
  private readonly now: () => number;
  private readonly started: number;
  private lastDraw = -Infinity;
  private lastStep = -1;
  private done = 0;
  private finished = false;

  constructor(private readonly options: ProgressBarOptions) {
    this.stream = options.stream ?? process.stderr;
    this.width = options.width ?? 30;
    this.now = options.now ?? (() => performance.now());
    this.started = this.now();
  }

  /** Reports `done` of `total`; `suffix` is shown after the counts (e.g. "412,000 events"). */
  update(done: number, suffix = ''): void {
    if (this.finished) return;
    this.done = Math.min(done, this.options.total);
    const now = this.now();
    if (this.stream.isTTY === true) {
      if (now - this.lastDraw < 100 && this.done < this.options.total) return;
      this.lastDraw = now;
      this.stream.write(`\r${this.line(suffix)}\x1b[K`);
      return;
    }
    const step = Math.floor((10 * this.done) / Math.max(1, this.options.total));
    if (step > this.lastStep) {
      this.lastStep = step;
      this.stream.write(`${this.line(suffix)}\n`);
    }
  }

  /** Draws the final state and ends the line. */
  finish(suffix = ''): void {
    if (this.finished) return;
    this.done = this.options.total;
    if (this.stream.isTTY === true) {
      this.stream.write(`\r${this.line(suffix)}\x1b[K\n`);
    } else if (this.lastStep < 10) {
      this.stream.write(`${this.line(suffix)}\n`);
    }
    this.finished = true;
  }

  private line(suffix: string): string {
    const { total, label } = this.options;
    const fraction = total > 0 ? this.done / total : 1;
    const filled = Math.round(fraction * this.width);
    const bar = '#'.repeat(filled) + '-'.repeat(this.width - filled);
    const seconds = ((this.now() - this.started) / 1000).toFixed(1);
    const percent = String(Math.floor(fraction * 100)).padStart(3);
    return `${label} [${bar}] ${percent}% ${this.done}/${total}${suffix === '' ? '' : ` · ${suffix}`} · ${seconds}s`;
  }
}
