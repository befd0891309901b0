import { randomUUID } from 'node:crypto';
import type { Prisma, PrismaClient } from '@prisma/client';

/**
 * A durable job queue in one table. Claiming uses `FOR UPDATE SKIP LOCKED`, which works on
 * real Postgres (many workers) and on PGlite (one connection). graphile-worker and pg-boss
 * need LISTEN/NOTIFY and several sessions, which PGlite cannot give (PLATFORM.md).
 */
export type Db = PrismaClient | Prisma.TransactionClient;

export interface JobRow {
  id: string;
  kind: string;
  dedupeKey: string;
  payload: Prisma.JsonValue;
  attempts: number;
  maxAttempts: number;
  userId: string | null;
  /**
   * This claim's token (`<worker id>:<uuid>`), stored in locked_by. Completion and failure
   * check it, so even the same worker re-claiming its own stale job holds two distinct claims.
   */
  claim: string;
}

export interface NewJob {
  kind: string;
  dedupeKey: string;
  payload: Prisma.InputJsonValue;
  userId?: string | null;
  maxAttempts: number;
}

/** Idempotent on dedupeKey: enqueueing the same work twice keeps one job. */
export async function enqueue(db: Db, job: NewJob): Promise<void> {
  await db.$executeRaw`
    INSERT INTO jobs (id, kind, dedupe_key, payload, max_attempts, user_id, updated_at)
    VALUES (${randomUUID()}::uuid, ${job.kind}, ${job.dedupeKey}, ${JSON.stringify(job.payload)}::jsonb,
      ${job.maxAttempts}, ${job.userId ?? null}::uuid, now())
    ON CONFLICT (dedupe_key) DO NOTHING`;
}

/**
 * Claims up to `limit` due jobs: pending ones whose time has come, and running ones whose
 * claim is older than `claimTimeoutMs` (their worker died or froze). A reclaimed job counts
 * as a new attempt.
 */
export async function claimJobs(
  db: Db,
  workerId: string,
  limit: number,
  claimTimeoutMs: number,
): Promise<JobRow[]> {
  return db.$queryRaw<JobRow[]>`
    UPDATE jobs SET status = 'RUNNING', locked_at = now(),
      locked_by = ${workerId} || ':' || gen_random_uuid()::text,
      attempts = attempts + 1, updated_at = now()
    WHERE id IN (
      SELECT id FROM jobs
      WHERE (status = 'PENDING' AND run_at <= now())
         OR (status = 'RUNNING' AND locked_at < now() - make_interval(secs => ${claimTimeoutMs / 1000}))
      ORDER BY run_at
      FOR UPDATE SKIP LOCKED
      LIMIT ${limit})
    RETURNING id, kind, dedupe_key AS "dedupeKey", payload, attempts, max_attempts AS "maxAttempts",
      user_id AS "userId", locked_by AS claim`;
}

/**
 * Marks a job done if its claim is still the current one. Call it inside the transaction that
 * writes the job's results: when it returns false, roll back, because another worker has
 * taken the job over and will write them.
 */
export async function completeJob(db: Db, job: Pick<JobRow, 'id' | 'claim'>): Promise<boolean> {
  const n = await db.$executeRaw`
    UPDATE jobs SET status = 'DONE', finished_at = now(), locked_at = NULL, last_error = NULL,
      updated_at = now()
    WHERE id = ${job.id}::uuid AND locked_by = ${job.claim} AND status = 'RUNNING'`;
  return n === 1;
}

/** Schedules a retry after `delayMs`, or marks the job dead once attempts are used up. */
export async function failJob(
  db: Db,
  job: Pick<JobRow, 'id' | 'attempts' | 'maxAttempts' | 'claim'>,
  error: string,
  delayMs: number,
): Promise<'retry' | 'dead' | 'lost'> {
  const dead = job.attempts >= job.maxAttempts;
  const n = await db.$executeRaw`
    UPDATE jobs SET
      status = ${dead ? 'DEAD' : 'PENDING'}::job_status,
      run_at = now() + make_interval(secs => ${delayMs / 1000}),
      locked_at = NULL, locked_by = NULL, last_error = ${error.slice(0, 2000)},
      finished_at = ${dead ? new Date() : null}, updated_at = now()
    WHERE id = ${job.id}::uuid AND locked_by = ${job.claim} AND status = 'RUNNING'`;
  if (n !== 1) return 'lost';
  return dead ? 'dead' : 'retry';
}

/** Puts a claimed job back to wait `delayMs`, without counting the attempt. */
export async function deferJob(
  db: Db,
  job: Pick<JobRow, 'id' | 'claim'>,
  delayMs: number,
): Promise<void> {
  await db.$executeRaw`
    UPDATE jobs SET status = 'PENDING', run_at = now() + make_interval(secs => ${delayMs / 1000}),
      locked_at = NULL, locked_by = NULL, attempts = GREATEST(attempts - 1, 0), updated_at = now()
    WHERE id = ${job.id}::uuid AND locked_by = ${job.claim} AND status = 'RUNNING'`;
}

/** On shutdown: give back claimed jobs without counting the attempt. */
export async function releaseJobs(db: Db, workerId: string): Promise<number> {
  return db.$executeRaw`
    UPDATE jobs SET status = 'PENDING', locked_at = NULL, locked_by = NULL,
      attempts = GREATEST(attempts - 1, 0), updated_at = now()
    WHERE starts_with(locked_by, ${`${workerId}:`}) AND status = 'RUNNING'`;
}

export interface QueueDepth {
  pending: number;
  running: number;
  dead: number;
  /** Age of the oldest job that is due and not yet claimed (0 when none). */
  oldestPendingSeconds: number;
}

export async function queueDepth(db: Db): Promise<QueueDepth> {
  const [row] = await db.$queryRaw<
    { pending: bigint; running: bigint; dead: bigint; oldest: number | null }[]
  >`
    SELECT count(*) FILTER (WHERE status = 'PENDING') AS pending,
      count(*) FILTER (WHERE status = 'RUNNING') AS running,
      count(*) FILTER (WHERE status = 'DEAD') AS dead,
      extract(epoch FROM now() - min(run_at) FILTER (WHERE status = 'PENDING' AND run_at <= now()))::float8 AS oldest
    FROM jobs WHERE status <> 'DONE'`;
  return {
    pending: Number(row?.pending ?? 0),
    running: Number(row?.running ?? 0),
    dead: Number(row?.dead ?? 0),
    oldestPendingSeconds: Math.max(0, Number(row?.oldest ?? 0)),
  };
}
