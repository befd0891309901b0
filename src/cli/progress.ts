/**
 * A one-line progress bar on stderr: count, percent, rate, ETA.
 *
 * Written here rather than taken from npm (cli-progress and friends): it is ~80 lines, the
 * CLIs need exactly one bar, and every dependency is weight in the 256 MB production image
 * and one more supply-chain entry for a cosmetic feature.
 *
 * On a TTY the line is redrawn in place (at most every 100 ms); piped to a file or a CI log it
 * prints a plain line every 10 % instead, so logs stay readable.
 */
export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  total: number;
  stream: ProgressStream;
  label?: string;
  /** Injectable clock (tests). */
  now?: () => number;
}

const REDRAW_MS = 100;

export class ProgressBar {
  private readonly started: number;
  private readonly now: () => number;
  private lastDraw = -Infinity;
  private lastDecile = -1;
  private done = 0;

  constructor(private readonly options: ProgressOptions) {
    this.now = options.now ?? Date.now;
    this.started = this.now();
  }

  update(done: number): void {
    this.done = done;
    const t = this.now();
    if (this.options.stream.isTTY) {
      if (t - this.lastDraw < REDRAW_MS && done < this.options.total) return;
      this.lastDraw = t;
      this.options.stream.write(`\r${this.line(t)}\x1b[K`);
      return;
    }
    const decile = Math.floor(this.fraction() * 10);
    if (decile > this.lastDecile) {
      this.lastDecile = decile;
      this.options.stream.write(`${this.line(t)}\n`);
    }
  }

  /** Leaves the final state on its own line. */
  finish(): void {
    if (this.options.stream.isTTY) {
      this.options.stream.write(`\r${this.line(this.now())}\x1b[K\n`);
    } else if (Math.floor(this.fraction() * 10) > this.lastDecile) {
      this.options.stream.write(`${this.line(this.now())}\n`);
    }
  }

  /** The text of the bar at time `t`; exported shape for tests. */
  line(t: number = this.now()): string {
    const { total, label } = this.options;
    const fraction = this.fraction();
    const elapsed = Math.max(t - this.started, 1) / 1000;
    const rate = this.done / elapsed;
    const left = Math.max(0, total - this.done);
    // No rate yet, no honest estimate.
    const eta = left === 0 ? '0:00' : rate > 0 ? formatDuration(left / rate) : '--:--';
    const stats =
      `${(fraction * 100).toFixed(1).padStart(5)}%  ${this.done}/${total}  ` +
      `${rate >= 10 ? Math.round(rate) : rate.toFixed(1)}/s  ETA ${eta}`;
    const prefix = label ? `${label} ` : '';
    const width = Math.max(10, Math.min(30, (this.options.stream.columns ?? 80) - 60));
    const filled = Math.round(fraction * width);
    return `${prefix}[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${stats}`;
  }

  private fraction(): number {
    const { total } = this.options;
    // New rows can appear while the command runs: never show more than 100 %.
    return total > 0 ? Math.min(1, this.done / total) : 1;
  }
}

export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}
