import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimJobs, completeJob } from '../src/jobs/queue.js';
import { Worker } from '../src/jobs/worker.js';
import { silentLogger } from '../src/logger.js';
import { EXTRACT_MEMORIES, extractMemoriesHandler } from '../src/memory/extract-job.js';
import { createTestContext, type TestContext } from './helpers/app.js';
import { personaIds, send, startChat } from './helpers/chat.js';

let t: TestContext;
beforeAll(async () => {
  t = await createTestContext();
});
afterAll(() => t?.close());

async function memoriesOf(userId: string) {
  return t.services.prisma.memory.findMany({ where: { userId }, orderBy: { content: 'asc' } });
}

describe('the extraction job survives a dead worker', () => {
  it('a stale claim is taken over and the memories are written exactly once', async () => {
    const user = await t.newUser();
    const personas = await personaIds(t, user.token);
    const { sessionId } = await startChat(t, user.token, personas.mira as string);
    await send(t, user.token, sessionId, "I'm a baker in Leeds and I love cycling");

    // A worker claims the job and dies before finishing (nothing of it was committed).
    const [claimed] = await claimJobs(t.services.prisma, 'dead-worker', 10, 60_000);
    expect(claimed?.kind).toBe(EXTRACT_MEMORIES);
    // While the claim is fresh, nobody else takes the job.
    expect(await t.drainJobs()).toBe(0);

    // Its lease lapses (its worker never renewed it).
    await t.services.prisma.$executeRaw`UPDATE jobs SET lease_until = now() - interval '1 second'`;
    expect(await t.drainJobs()).toBe(1);
    const written = await memoriesOf(user.id);
    expect(written.map((m) => m.content)).toEqual(
      expect.arrayContaining([expect.stringMatching(/baker/i), expect.stringMatching(/cycling/i)]),
    );

    // The "dead" worker was only frozen: when it wakes up and finishes, its claim is gone,
    // so its transaction rolls back and nothing is written twice.
    const zombie = new Worker({
      prisma: t.services.prisma,
      handlers: { [EXTRACT_MEMORIES]: extractMemoriesHandler(t.services) },
      logger: silentLogger,
      concurrency: 1,
      pollMs: 10,
      leaseMs: 60_000,
      retryBaseMs: 0,
      workerId: 'dead-worker',
    });
    if (!claimed) throw new Error('unreachable');
    await zombie.execute(claimed);
    expect(await memoriesOf(user.id)).toEqual(written);
    const job = await t.services.prisma.job.findFirstOrThrow({ where: { userId: user.id } });
    expect(job.status).toBe('DONE');
    expect(job.attempts).toBe(2);

    const history = await t.services.prisma.memoryHistory.findMany({ where: { userId: user.id } });
    expect(history).toHaveLength(written.length);
    expect(history.every((h) => h.action === 'ADDED' && h.actorType === 'worker')).toBe(true);
  });

  it('running the same turn twice never duplicates memories', async () => {
    const user = await t.newUser();
    const personas = await personaIds(t, user.token);
    const { sessionId } = await startChat(t, user.token, personas.rook as string);
    await send(t, user.token, sessionId, 'I work as a welder');
    await t.drainJobs();
    await send(t, user.token, sessionId, 'I work as a welder!');
    await send(t, user.token, sessionId, 'i work as a welder');
    await t.drainJobs();
    const rows = await memoriesOf(user.id);
    expect(rows.filter((m) => /welder/i.test(m.content))).toHaveLength(1);
  });

  it('a worker that re-claims its own stale job holds a new claim; the old one cannot finish it', async () => {
    const user = await t.newUser();
    const personas = await personaIds(t, user.token);
    const { sessionId } = await startChat(t, user.token, personas.mira as string);
    await send(t, user.token, sessionId, 'I grow tomatoes');
    const prisma = t.services.prisma;
    const [first] = await claimJobs(prisma, 'same-worker', 1, 60_000);
    await prisma.$executeRaw`UPDATE jobs SET lease_until = now() - interval '1 second'`;
    const [second] = await claimJobs(prisma, 'same-worker', 1, 60_000);
    if (!first || !second) throw new Error('expected two claims');
    expect(second.id).toBe(first.id);
    expect(second.claim).not.toBe(first.claim);
    expect(await completeJob(prisma, first)).toBe(false);
    expect(await completeJob(prisma, second)).toBe(true);
  });
});
