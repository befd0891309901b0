import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Prisma, PrismaClient } from '@prisma/client';
import { isDatabaseUnavailable } from '../db/unavailable.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import {
  claimJobs,
  completeJob,
  deferJob,
  failJob,
  type JobRow,
  releaseJobs,
  renewLeases,
} from './queue.js';

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
  /** Aborted when shutdown passes its deadline, or when this job's lease was taken over. */
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
  /** How long a claim holds without renewal; renewed every third of it while the job runs. */
  leaseMs: number;
  retryBaseMs: number;
  workerId?: string;
  metrics?: Metrics;
  /**
   * The in-process worker's fair share of a busy process: while turns run beside it, it keeps
   * up to ceil(inFlight() × ratio) jobs in flight (never fewer than `concurrency`, never more
   * than `max`). One event loop serves turns and jobs roughly in proportion to the work each
   * has in flight, so a fixed 2 jobs against 64 turns get ~3 % of it; this keeps the worker at
   * about ratio / (1 + ratio) of it until `max` jobs (then max / (max + turns)), and never below
   * `concurrency` jobs.
   */
  fairShare?: { inFlight: () => number; ratio: number; max: number };
  /** Periodic upkeep (pruning), run beside the jobs every `everyMs`, one run at a time. */
  housekeeping?: { everyMs: number; run: () => Promise<unknown> };
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
  /** Claims being executed (by the loop or runOnce), each with its own abort. */
  private readonly claims = new Map<string, AbortController>();
  private heartbeat: NodeJS.Timeout | null = null;
  private renewing = false;
  private housekeeping: Promise<unknown> | null = null;
  private nextHousekeeping = 0;
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
    await this.housekeeping;
    this.stopHeartbeat();
  }

  /** Jobs the loop may hold at once now (see WorkerOptions.fairShare). */
  private capacity(): number {
    const share = this.o.fairShare;
    if (!share) return this.o.concurrency;
    const wanted = Math.ceil(share.inFlight() * share.ratio);
    return Math.max(this.o.concurrency, Math.min(share.max, wanted));
  }

  /** Claims and runs one batch to completion; for tests and tools. Returns jobs run. */
  async runOnce(): Promise<number> {
    const jobs = await claimJobs(this.o.prisma, this.id, this.o.concurrency, this.o.leaseMs);
    await Promise.all(jobs.map((job) => this.execute(job)));
    return jobs.length;
  }

  private async run(): Promise<void> {
    while (this.running) {
      this.maybeHousekeep();
      const free = this.capacity() - this.inFlight.size;
      let claimed = 0;
      if (free > 0) {
        try {
          const jobs = await claimJobs(this.o.prisma, this.id, free, this.o.leaseMs);
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
      if (claimed === 0 || this.inFlight.size >= this.capacity()) await this.idle();
    }
  }

  private maybeHousekeep(): void {
    const h = this.o.housekeeping;
    if (!h || this.housekeeping || Date.now() < this.nextHousekeeping) return;
    this.nextHousekeeping = Date.now() + h.everyMs;
    this.housekeeping = h
      .run()
      .catch((err: unknown) => this.o.logger.warn({ err, worker: this.id }, 'housekeeping failed'))
      .finally(() => {
        this.housekeeping = null;
      });
  }

  /**
   * Renews the leases of every job this worker is running, in one statement, every third of a
   * lease. A claim that was not renewed has been taken over: its job is aborted and cannot
   * commit anyway (completion checks the claim).
   */
  private async renew(): Promise<void> {
    if (this.renewing || this.claims.size === 0) return;
    this.renewing = true;
    const claims = [...this.claims.keys()];
    try {
      const held = await renewLeases(this.o.prisma, claims, this.o.leaseMs);
      for (const claim of claims) {
        if (held.has(claim)) continue;
        // Finished between the snapshot and the renewal, or really lost: either way it is over.
        this.claims.get(claim)?.abort(new LostClaimError(claim));
      }
    } catch (err) {
      this.o.logger.warn({ err, worker: this.id }, 'renewing job leases failed');
    } finally {
      this.renewing = false;
    }
  }

  private track(claim: string): AbortController {
    const controller = new AbortController();
    this.claims.set(claim, controller);
    if (!this.heartbeat) {
      this.heartbeat = setInterval(() => void this.renew(), Math.max(100, this.o.leaseMs / 3));
      this.heartbeat.unref();
    }
    return controller;
  }

  private untrack(claim: string): void {
    this.claims.delete(claim);
    if (this.claims.size === 0) this.stopHeartbeat();
  }

  private stopHeartbeat(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
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
    const lease = this.track(job.claim);
    try {
      if (!handler) throw new Error(`no handler for job kind "${job.kind}"`);
      await handler(job, {
        workerId: this.id,
        signal: AbortSignal.any([this.abort.signal, lease.signal]),
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
    } finally {
      this.untrack(job.claim);
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
