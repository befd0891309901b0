/**
 * Shared helpers for the benchmarks in bench/: machine facts, percentiles, plain-text
 * tables, the JSON trailer, and a deadline guard so every script stays bounded in time.
 */

import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';

export interface MachineInfo {
  nproc: number;
  cpuModel: string;
  totalMemGiB: number;
  node: string;
  platform: string;
  /** 1/5/15-minute load average: above nproc, other work competed with the benchmark. */
  loadAverage: number[];
  /** `git describe --always --dirty` of the tree measured (uncommitted work shows as -dirty). */
  revision: string;
}

let revision: string | undefined;
function gitRevision(): string {
  if (revision === undefined) {
    try {
      revision = execFileSync('git', ['describe', '--always', '--dirty'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim();
    } catch {
      revision = 'unknown';
    }
  }
  return revision;
}

export function machineInfo(): MachineInfo {
  return {
    nproc: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? 'unknown',
    totalMemGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    loadAverage: loadavg().map((x) => Math.round(x * 100) / 100),
    revision: gitRevision(),
  };
}

/** Nearest-rank percentile of an unsorted sample (ms, etc.). NaN for an empty sample. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] as number;
}

export interface LatencySummary {
  n: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export function summarize(samples: readonly number[]): LatencySummary {
  const sorted = [...samples].sort((a, b) => a - b);
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    n: sorted.length,
    mean: sorted.length ? sum / sorted.length : Number.NaN,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted.length ? (sorted[sorted.length - 1] as number) : Number.NaN,
  };
}

export function round(x: number, digits = 3): number {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Fixed-width text table (right-aligned numbers, left-aligned text). */
export function table(headers: readonly string[], rows: readonly (readonly unknown[])[]): string {
  const cells = rows.map((r) => r.map((c) => fmt(c)));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]?.length ?? 0)));
  const line = (r: readonly string[], isHeader = false) =>
    r
      .map((c, i) => {
        const w = widths[i] ?? 0;
        const numeric = !isHeader && /^-?[\d.,]+(%|x| ms)?$/.test(c);
        return numeric ? c.padStart(w) : c.padEnd(w);
      })
      .join('  ')
      .trimEnd();
  const sep = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(headers, true), sep, ...cells.map((r) => line(r))].join('\n');
}

function fmt(c: unknown): string {
  if (typeof c === 'number') {
    if (!Number.isFinite(c)) return String(c);
    if (Number.isInteger(c)) return String(c);
    return c.toFixed(Math.abs(c) >= 100 ? 1 : 3);
  }
  return c === undefined || c === null ? '' : String(c);
}

/** Prints the JSON result after the tables, and writes it to `file` when given. */
export async function emitJson(result: unknown, file?: string): Promise<void> {
  const text = JSON.stringify(result, null, 2);
  process.stdout.write(`\n--- JSON ---\n${text}\n`);
  if (file) await writeFile(file, `${text}\n`);
}

/**
 * A hard wall-clock limit: a benchmark that overruns its budget prints what happened and
 * exits instead of hanging a CI job. `unref` so it never keeps a finished process alive.
 */
export function deadline(seconds: number, what: string): NodeJS.Timeout {
  return setTimeout(() => {
    process.stderr.write(
      `\n${what}: exceeded the ${seconds}s time limit (--max-seconds); aborting\n`,
    );
    process.exit(3);
  }, seconds * 1000).unref();
}

const processStart = performance.now();

/** Progress on stderr (stdout carries the tables and JSON), with seconds since start. */
export function log(message: string): void {
  const t = ((performance.now() - processStart) / 1000).toFixed(1);
  process.stderr.write(`[bench +${t}s] ${message}\n`);
}

/** Seeded PRNG (mulberry32) so random data sets and baselines are reproducible. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function intArg(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number`);
  return n;
}
