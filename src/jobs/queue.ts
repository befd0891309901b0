import { randomUUID } from 'node:crypto';
import { Prisma, type PrismaClient } from '@prisma/client';

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
  await db.$executeRaw(enqueueStatement(job));
}

/**
 * The INSERT of `enqueue` as a fragment, for a caller that enqueues inside a larger statement
 * (the chat turn stores its reply and enqueues its extraction in one round trip, as a CTE).
 * `when`: a condition (SQL) the job is enqueued under, e.g. that the row it is about was stored.
 */
export function enqueueStatement(job: NewJob, when: Prisma.Sql = Prisma.sql`true`): Prisma.Sql {
  return Prisma.sql`
    INSERT INTO jobs (id, kind, dedupe_key, payload, max_attempts, user_id, updated_at)
    SELECT ${randomUUID()}::uuid, ${job.kind}, ${job.dedupeKey}, ${JSON.stringify(job.payload)}::jsonb,
      ${job.maxAttempts}::int, ${job.userId ?? null}::uuid, now()
    WHERE ${when}
    ON CONFLICT (dedupe_key) DO NOTHING`;
}

/**
 * Claims up to `limit` due jobs under a lease of `leaseMs`: pending ones whose time has come,
 * and running ones whose lease has lapsed (their worker died or lost the database). A live
 * worker renews its leases (renewLeases), so however slow a job is, it is never claimed twice
 * while its worker runs. A reclaimed job counts as a new attempt.
 */
export async function claimJobs(
  db: Db,
  workerId: string,
  limit: number,
  leaseMs: number,
): Promise<JobRow[]> {
  return db.$queryRaw<JobRow[]>`
    UPDATE jobs SET status = 'RUNNING', locked_at = now(),
      lease_until = now() + make_interval(secs => ${leaseMs / 1000}),
      locked_by = ${workerId} || ':' || gen_random_uuid()::text,
      attempts = attempts + 1, updated_at = now()
    WHERE id IN (
      SELECT id FROM jobs
      WHERE (status = 'PENDING' AND run_at <= now())
         OR (status = 'RUNNING' AND lease_until < now())
      ORDER BY run_at
      FOR UPDATE SKIP LOCKED
      LIMIT ${limit})
    RETURNING id, kind, dedupe_key AS "dedupeKey", payload, attempts, max_attempts AS "maxAttempts",
      user_id AS "userId", locked_by AS claim`;
}

/**
 * The heartbeat: extends the leases of the given claims by `leaseMs` from now, in one
 * statement. Returns the claims still held; any other was taken over (its lease lapsed and
 * another worker claimed the job) and must not commit.
 */
export async function renewLeases(db: Db, claims: string[], leaseMs: number): Promise<Set<string>> {
  if (claims.length === 0) return new Set();
  const rows = await db.$queryRaw<{ claim: string }[]>`
    UPDATE jobs SET lease_until = now() + make_interval(secs => ${leaseMs / 1000})
    WHERE locked_by IN (${Prisma.join(claims)}) AND status = 'RUNNING'
    RETURNING locked_by AS claim`;
  return new Set(rows.map((r) => r.claim));
}

/**
 * Marks a job done if its claim is still the current one. Call it inside the transaction that
 * writes the job's results: when it returns false, roll back, because another worker has
 * taken the job over and will write them. The claim token in the WHERE clause is what keeps a
 * worker that lost its lease from committing: a new claim replaces the token, and the row lock
 * this UPDATE takes makes a concurrent claimer skip the row until the commit.
 */
export async function completeJob(db: Db, job: Pick<JobRow, 'id' | 'claim'>): Promise<boolean> {
  const n = await db.$executeRaw`
    UPDATE jobs SET status = 'DONE', finished_at = now(), locked_at = NULL, lease_until = NULL,
      last_error = NULL, updated_at = now()
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
      locked_at = NULL, locked_by = NULL, lease_until = NULL, last_error = ${error.slice(0, 2000)},
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
      locked_at = NULL, locked_by = NULL, lease_until = NULL, attempts = GREATEST(attempts - 1, 0),
      updated_at = now()
    WHERE id = ${job.id}::uuid AND locked_by = ${job.claim} AND status = 'RUNNING'`;
}

/** On shutdown: give back claimed jobs without counting the attempt. */
export async function releaseJobs(db: Db, workerId: string): Promise<number> {
  return db.$executeRaw`
    UPDATE jobs SET status = 'PENDING', locked_at = NULL, locked_by = NULL, lease_until = NULL,
      attempts = GREATEST(attempts - 1, 0), updated_at = now()
    WHERE starts_with(locked_by, ${`${workerId}:`}) AND status = 'RUNNING'`;
}

/**
 * Deletes up to `batch` jobs that finished (DONE) more than `retentionMs` ago, oldest first,
 * and returns how many. Small batches keep each delete short, so it never holds up claims or
 * turns; dead jobs stay until an admin retries or discards them.
 */
export async function pruneFinishedJobs(
  db: Db,
  retentionMs: number,
  batch: number,
): Promise<number> {
  return db.$executeRaw`
    DELETE FROM jobs WHERE id IN (
      SELECT id FROM jobs
      WHERE status = 'DONE' AND finished_at < now() - make_interval(secs => ${retentionMs / 1000})
      ORDER BY finished_at
      LIMIT ${batch}
      FOR UPDATE SKIP LOCKED)`;
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
