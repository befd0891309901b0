import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pruneTables } from '../src/jobs/prune.js';
import { claimJobs, completeJob, enqueue, pruneFinishedJobs } from '../src/jobs/queue.js';
import { type JobHandler, Worker } from '../src/jobs/worker.js';
import { PostgresRateStore, pruneRateLimits } from '../src/limits-store.js';
import { silentLogger } from '../src/logger.js';
import { createTestContext, type TestContext } from './helpers/app.js';
import { within } from './helpers/wait.js';

/*
 * Leases (a claim renewed while its job runs), pruning of finished jobs and of rate-limit rows,
 * and the shared token buckets — on both tiers, through the queue's own functions.
 */

let t: TestContext;
beforeAll(async () => {
  t = await createTestContext();
});
afterAll(() => t?.close());

const prisma = () => t.services.prisma;

async function newJob(kind: string): Promise<string> {
  const dedupeKey = `${kind}:${randomUUID()}`;
  await enqueue(prisma(), { kind, dedupeKey, payload: {}, maxAttempts: 5 });
  const job = await prisma().job.findUniqueOrThrow({ where: { dedupeKey } });
  return job.id;
}

function worker(id: string, leaseMs: number, handlers: Record<string, JobHandler>): Worker {
  return new Worker({
    prisma: prisma(),
    handlers,
    logger: silentLogger,
    concurrency: 1,
    pollMs: 20,
    leaseMs,
    retryBaseMs: 0,
    workerId: id,
  });
}

describe('job leases', () => {
  it('a job slower than its lease completes with attempts = 1 and no second claim', async () => {
    // The lease is short and the job runs for three of them; another worker keeps trying to
    // claim all the while. The running worker's heartbeat keeps its lease alive.
    const LEASE_MS = 2_500;
    let rivalClaims = 0;
    let release!: () => void;
    const finish = new Promise<void>((resolve) => {
      release = resolve;
    });
    let started!: () => void;
    const running = new Promise<void>((resolve) => {
      started = resolve;
    });
    const slow: JobHandler = async (_job, ctx) => {
      started();
      await finish;
      if (ctx.signal.aborted) throw new Error('lease lost');
      await prisma().$transaction((tx) => ctx.complete(tx));
    };
    const id = await newJob('slow-lease');
    const owner = worker('owner', LEASE_MS, { 'slow-lease': slow });
    const rival = worker('rival', LEASE_MS, {
      'slow-lease': async () => {
        rivalClaims++;
      },
    });
    const [claimed] = await claimJobs(prisma(), owner.id, 1, LEASE_MS);
    expect(claimed?.id).toBe(id);
    if (!claimed) throw new Error('unreachable');
    const execution = owner.execute(claimed);
    await within(running, 10_000, 'the slow job to start');

    // Three leases of wall time, the rival polling throughout.
    const until = Date.now() + 3 * LEASE_MS;
    while (Date.now() < until) {
      rivalClaims += await rival.runOnce();
      await sleep(100);
    }
    release();
    await within(execution, 10_000, 'the slow job to finish');

    const job = await prisma().job.findUniqueOrThrow({ where: { id } });
    expect({ status: job.status, attempts: job.attempts, rivalClaims }).toEqual({
      status: 'DONE',
      attempts: 1,
      rivalClaims: 0,
    });
  }, 30_000);

  it("a dead worker's job is claimed again once its lease lapsed; the dead claim cannot commit", async () => {
    const id = await newJob('orphan');
    // A worker claims it with a 1 s lease and dies: nobody renews it.
    const [dead] = await claimJobs(prisma(), 'dead-worker', 1, 1_000);
    expect(dead?.id).toBe(id);
    if (!dead) throw new Error('unreachable');
    // While the lease runs, nobody takes the job (the lease may lapse under a slow machine
    // before this claim, so only what must hold is asserted: no claim of a live lease).
    const lapsed = await prisma().$queryRaw<{ lapsed: boolean }[]>`
      SELECT lease_until < now() AS lapsed FROM jobs WHERE id = ${id}::uuid`;
    const early = await claimJobs(prisma(), 'rescuer', 1, 30_000);
    if (!lapsed[0]?.lapsed) expect(early.filter((j) => j.id === id)).toEqual([]);
    // Once it lapsed, the next claim takes it, as a new attempt.
    const deadline = Date.now() + 10_000;
    let rescued = early.find((j) => j.id === id);
    while (!rescued && Date.now() < deadline) {
      await sleep(100);
      rescued = (await claimJobs(prisma(), 'rescuer', 1, 30_000)).find((j) => j.id === id);
    }
    expect(rescued?.attempts).toBe(2);
    if (!rescued) throw new Error('unreachable');
    expect(await completeJob(prisma(), dead)).toBe(false);
    expect(await completeJob(prisma(), rescued)).toBe(true);
  });
});

describe('pruning', () => {
  it('deletes finished jobs past the retention, in batches, and keeps dead, pending and recent ones', async () => {
    await prisma().job.deleteMany({});
    const ids = {
      oldDone: await Promise.all([1, 2, 3].map(() => newJob('prune'))),
      recentDone: await newJob('prune'),
      oldDead: await newJob('prune'),
      pending: await newJob('prune'),
    };
    const eightDaysAgo = new Date(Date.now() - 8 * 86_400_000);
    await prisma().job.updateMany({
      where: { id: { in: ids.oldDone } },
      data: { status: 'DONE', finishedAt: eightDaysAgo },
    });
    await prisma().job.update({
      where: { id: ids.recentDone },
      data: { status: 'DONE', finishedAt: new Date() },
    });
    await prisma().job.update({
      where: { id: ids.oldDead },
      data: { status: 'DEAD', finishedAt: eightDaysAgo },
    });
    const week = 7 * 86_400_000;
    expect(await pruneFinishedJobs(prisma(), week, 2)).toBe(2);
    expect(await pruneFinishedJobs(prisma(), week, 2)).toBe(1);
    expect(await pruneFinishedJobs(prisma(), week, 2)).toBe(0);
    const left = await prisma().job.findMany({ select: { id: true } });
    expect(left.map((j) => j.id).sort()).toEqual([ids.recentDone, ids.oldDead, ids.pending].sort());
  });

  it("drops rate-limit rows whose bucket has refilled, keeps the last minute's", async () => {
    const store = new PostgresRateStore(prisma());
    const [old, fresh] = [randomUUID(), randomUUID()];
    await store.take(old, 'turns', 10);
    await store.take(fresh, 'turns', 10);
    await prisma().$executeRaw`
      UPDATE rate_limits SET updated_at = now() - interval '2 minutes' WHERE user_id = ${old}::uuid`;
    expect(await pruneRateLimits(prisma())).toBe(1);
    const rows = await prisma().rateLimit.findMany({ where: { userId: { in: [old, fresh] } } });
    expect(rows.map((r) => r.userId)).toEqual([fresh]);
    // The worker's upkeep runs both.
    expect(await pruneTables(prisma(), 86_400_000, silentLogger)).toEqual({
      jobs: 0,
      rateLimits: 0,
    });
  });
});

describe('token buckets in Postgres', () => {
  it('admits the burst, then refuses with the time until the next token', async () => {
    const store = new PostgresRateStore(prisma());
    const user = randomUUID();
    for (let i = 0; i < 3; i++) expect(await store.take(user, 'starts', 3)).toBe(0);
    const wait = await store.take(user, 'starts', 3);
    // 3 per minute: a token every 20 s, of which almost nothing has passed.
    expect(wait).toBeGreaterThan(15_000);
    expect(wait).toBeLessThanOrEqual(20_000);
    // Another limit and another user have their own buckets.
    expect(await store.take(user, 'turns', 3)).toBe(0);
    expect(await store.take(randomUUID(), 'starts', 3)).toBe(0);
  });

  it('refills by the time elapsed', async () => {
    const store = new PostgresRateStore(prisma());
    const user = randomUUID();
    expect(await store.take(user, 'embeds', 2)).toBe(0);
    expect(await store.take(user, 'embeds', 2)).toBe(0);
    expect(await store.take(user, 'embeds', 2)).toBeGreaterThan(0);
    // 40 s later (moved in the database instead of waited for): over one token is back.
    await prisma().$executeRaw`
      UPDATE rate_limits SET updated_at = updated_at - interval '40 seconds'
      WHERE user_id = ${user}::uuid`;
    expect(await store.take(user, 'embeds', 2)).toBe(0);
    expect(await store.take(user, 'embeds', 2)).toBeGreaterThan(0);
  });

  it('concurrent takes never admit more than the bucket holds', async () => {
    const store = new PostgresRateStore(prisma());
    const user = randomUUID();
    const waits = await Promise.all(Array.from({ length: 12 }, () => store.take(user, 'turns', 5)));
    expect(waits.filter((w) => w === 0)).toHaveLength(5);
  });
});
