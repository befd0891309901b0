import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Prisma, PrismaClient } from '@prisma/client';
import { isDatabaseUnavailable } from '../db/unavailable.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { claimJobs, completeJob, deferJob, failJob, type JobRow, releaseJobs } from './queue.js';

export class LostClaimError extends Error {
  override readonly name = 'LostClaimError';
}

/** Thrown by a handler that cannot run yet (e.g. a rate limit): retried later, not a failure. */
export class DeferJobError extends Error {
  override readonly name = 'DeferJobError';
  constructor(
    readonly delayMs: number,
    reason: string,
  ) {
    super(reason);
  }
}

export interface JobContext {
  workerId: string;
  /** Aborted when shutdown passes its deadline. */
  signal: AbortSignal;
  /**
   * Marks the job done. Call it inside the transaction that writes the job's results; it
   * throws LostClaimError (rolling that transaction back) if the claim expired meanwhile.
   */
  complete(tx: Prisma.TransactionClient): Promise<void>;
}

export type JobHandler = (job: JobRow, ctx: JobContext) => Promise<void>;

export interface WorkerOptions {
  prisma: PrismaClient;
  handlers: Record<string, JobHandler>;
  logger: Logger;
  concurrency: number;
  pollMs: number;
  claimTimeoutMs: number;
  retryBaseMs: number;
  workerId?: string;
  metrics?: Metrics;
}

/**
 * Claims and runs jobs. Several workers (in-process or `npm run worker`, on several machines)
 * can share one Postgres; SKIP LOCKED and the claim check on completion keep each job's
 * results written once.
 */
export class Worker {
  readonly id: string;
  private running = false;
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly abort = new AbortController();
  private wakeUp: (() => void) | null = null;
  private loop: Promise<void> | null = null;

  constructor(private readonly o: WorkerOptions) {
    this.id = o.workerId ?? `worker-${randomUUID().slice(0, 8)}`;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  status(): { running: boolean; inFlight: number } {
    return { running: this.running, inFlight: this.inFlight.size };
  }

  /** A job was enqueued: look now instead of at the next poll. */
  wake(): void {
    this.wakeUp?.();
  }

  /**
   * Stops claiming, lets in-flight jobs finish until `deadlineMs`, then aborts them and
   * releases their claims so another worker picks them up at once.
   */
  async stop(deadlineMs: number): Promise<void> {
    this.running = false;
    this.wake();
    await this.loop;
    const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), deadlineMs).unref());
    const settled = await Promise.race([Promise.allSettled(this.inFlight.values()), timer]);
    if (settled === 'timeout') {
      this.abort.abort(new Error('worker shutting down'));
      const released = await releaseJobs(this.o.prisma, this.id).catch(() => 0);
      this.o.logger.warn({ worker: this.id, released }, 'released unfinished jobs at shutdown');
    }
  }

  /** Claims and runs one batch to completion; for tests and tools. Returns jobs run. */
  async runOnce(): Promise<number> {
    const jobs = await claimJobs(this.o.prisma, this.id, this.o.concurrency, this.o.claimTimeoutMs);
    await Promise.all(jobs.map((job) => this.execute(job)));
    return jobs.length;
  }

  private async run(): Promise<void> {
    while (this.running) {
      const free = this.o.concurrency - this.inFlight.size;
      let claimed = 0;
      if (free > 0) {
        try {
          const jobs = await claimJobs(this.o.prisma, this.id, free, this.o.claimTimeoutMs);
          claimed = jobs.length;
          for (const job of jobs) {
            const p = this.execute(job).finally(() => {
              this.inFlight.delete(job.id);
              this.wake();
            });
            this.inFlight.set(job.id, p);
          }
        } catch (err) {
          this.o.logger.error({ err, worker: this.id }, 'claiming jobs failed');
        }
      }
      if (claimed === 0 || this.inFlight.size >= this.o.concurrency) await this.idle();
    }
  }

  private idle(): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, this.o.pollMs);
      const self = this;
      function done() {
        clearTimeout(timer);
        self.wakeUp = null;
        resolve();
      }
      this.wakeUp = done;
    });
  }

  /** Runs one job this worker has already claimed. */
  async execute(job: JobRow): Promise<void> {
    const log = this.o.logger.child({ job: job.id, kind: job.kind, attempt: job.attempts });
    const handler = this.o.handlers[job.kind];
    try {
      if (!handler) throw new Error(`no handler for job kind "${job.kind}"`);
      await handler(job, {
        workerId: this.id,
        signal: this.abort.signal,
        complete: async (tx) => {
          if (!(await completeJob(tx, job))) throw new LostClaimError(job.id);
        },
      });
      this.count(job, 'done');
      log.debug('job done');
    } catch (err) {
      if (err instanceof LostClaimError) {
        this.count(job, 'lost');
        log.warn('claim expired before the job finished; its new owner will write the results');
        return;
      }
      if (err instanceof DeferJobError) {
        await deferJob(this.o.prisma, job, err.delayMs).catch(() => {});
        this.count(job, 'deferred');
        log.info({ delayMs: err.delayMs, reason: err.message }, 'job deferred');
        return;
      }
      if (isDatabaseUnavailable(err)) {
        // Not the job's fault: hand it back without counting the attempt. The hand-back needs
        // the database too, so it is retried for a while; past that the claim expires and the
        // job runs again anyway.
        const handedBack = await retryWhileUnavailable(() =>
          deferJob(this.o.prisma, job, 1_000 + Math.random() * 4_000),
        );
        this.count(job, handedBack ? 'deferred' : 'lost');
        log.warn({ err, handedBack }, 'database unavailable; job handed back');
        return;
      }
      // Full jitter, exponential, capped at an hour.
      const delay =
        Math.min(this.o.retryBaseMs * 2 ** (job.attempts - 1), 3_600_000) * Math.random();
      const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      const outcome = await failJob(this.o.prisma, job, message, delay).catch(() => 'lost');
      this.count(job, outcome);
      log.warn({ err, outcome }, outcome === 'dead' ? 'job is dead' : 'job failed; will retry');
    }
  }

  private count(job: JobRow, outcome: string): void {
    this.o.metrics?.jobOutcomes.inc({ kind: job.kind, outcome });
  }
}

/** Runs `write` until it succeeds, for up to ~7.5 s of database outage; false if it never did. */
async function retryWhileUnavailable(write: () => Promise<unknown>): Promise<boolean> {
  for (const wait of [500, 1_000, 2_000, 4_000, 0]) {
    try {
      await write();
      return true;
    } catch (err) {
      if (!isDatabaseUnavailable(err) || wait === 0) return false;
      await sleep(wait);
    }
  }
  return false;
}
