import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startVoyageFake, type VoyageFake, type VoyageFault } from './fakes/voyage-fake.js';
import { createTestContext, type TestContext } from './helpers/app.js';
import { personaIds, send, startChat } from './helpers/chat.js';
import { fakeProviderEnv } from './helpers/providers.js';
import { CLIENT_TIMEOUT_MS } from './helpers/timeouts.js';

/**
 * Embeddings down (the hardening issue): with every Voyage call failing, each chat turn still
 * answers, without recall (counted and logged); its memory job fails, waits and is retried,
 * never dead before JOB_MAX_ATTEMPTS; once Voyage is back, the worker writes the memories,
 * once. The tests are one story and run in order.
 */
const FAULTS: VoyageFault[] = ['503', '429', 'hang', 'malformed-json', 'wrong-dimension'];
const STATEMENTS = [
  "I'm a nurse and I work night shifts",
  'I live in Lisbon with my sister',
  'I love climbing on weekends',
  "I'm allergic to cats",
  'My favourite food is ramen',
];
const JOB_MAX_ATTEMPTS = 3;

let t: TestContext;
let voyage: VoyageFake;
let user: { id: string; token: string };
let sessionId: string;

beforeAll(async () => {
  voyage = await startVoyageFake();
  t = await createTestContext({
    env: {
      ...fakeProviderEnv({ voyage }),
      // Only the 'hang' fault (which never answers) reaches it, however busy the machine.
      VOYAGE_TIMEOUT_MS: String(CLIENT_TIMEOUT_MS),
      VOYAGE_MAX_RETRIES: '1',
      JOB_MAX_ATTEMPTS: String(JOB_MAX_ATTEMPTS),
      // Long enough that a failed job is visibly not due; the test moves the clock instead.
      JOB_RETRY_BASE_MS: '60000',
      // One runOnce claims every job of the story.
      WORKER_CONCURRENCY: '10',
    },
  });
  user = await t.newUser();
  ({ sessionId } = await startChat(
    t,
    user.token,
    (await personaIds(t, user.token)).mira as string,
  ));
});
afterAll(async () => {
  vi.restoreAllMocks();
  await t?.close();
  await voyage?.close();
});

const recallFailures = async () =>
  (await t.services.metrics.recallFailures.get()).values[0]?.value ?? 0;
const jobs = () =>
  t.services.prisma.job.findMany({ where: { userId: user.id }, orderBy: { createdAt: 'asc' } });
const memories = () => t.services.prisma.memory.findMany({ where: { userId: user.id } });
/** Time passes: every waiting job is due now. */
const makeJobsDue = () =>
  t.services.prisma.$executeRaw`UPDATE jobs SET run_at = now() WHERE status = 'PENDING'`;

describe('chat with the embeddings provider down', () => {
  it.each(FAULTS.map((fault, i) => [fault, STATEMENTS[i] as string]))(
    'Voyage answering %s: the turn answers without recall, counted and logged',
    async (fault, statement) => {
      voyage.setFaults({ probability: 1, kinds: [fault], retryAfter: '0' });
      const warn = vi.spyOn(t.services.logger, 'warn');
      const failuresBefore = await recallFailures();
      const before = voyage.requests.length;

      const turn = await send(t, user.token, sessionId, statement);
      expect(turn.reply.content.length).toBeGreaterThan(0);
      expect(turn.recalled).toEqual({ profile: [], relationship: [] });
      expect(voyage.requests.length - before).toBeGreaterThanOrEqual(1);
      expect(await recallFailures()).toBe(failuresBefore + 1);
      expect(warn).toHaveBeenCalledWith(
        expect.objectContaining({ userId: user.id }),
        'recall failed; answering without memories',
      );
      warn.mockRestore();
    },
  );

  it('enqueued one extraction job per turn, durably, before any worker ran', async () => {
    const queued = await jobs();
    expect(queued).toHaveLength(FAULTS.length);
    expect(queued.every((j) => j.status === 'PENDING' && j.attempts === 0)).toBe(true);
  });
});

describe('memory jobs while it stays down', () => {
  it('fail, are scheduled for a later retry, and are not due meanwhile', async () => {
    voyage.setFaults({ probability: 1, kinds: ['503'], retryAfter: '0' });
    // Half of the full-jitter window, so "later" is a known amount.
    const random = vi.spyOn(Math, 'random').mockReturnValue(0.5);
    try {
      expect(await t.worker.runOnce()).toBe(FAULTS.length);
    } finally {
      random.mockRestore();
    }
    for (const job of await jobs()) {
      expect(job.status).toBe('PENDING');
      expect(job.attempts).toBe(1);
      expect(job.lastError).toMatch(/voyage|503/i);
      expect(job.runAt.getTime() - job.updatedAt.getTime()).toBeGreaterThanOrEqual(29_000);
    }
    expect(await t.worker.runOnce()).toBe(0);
    expect(await memories()).toEqual([]);
  });

  it(`are retried when due, and still not dead before attempt ${JOB_MAX_ATTEMPTS}`, async () => {
    await makeJobsDue();
    expect(await t.worker.runOnce()).toBe(FAULTS.length);
    for (const job of await jobs()) {
      expect(job.status).toBe('PENDING');
      expect(job.attempts).toBe(JOB_MAX_ATTEMPTS - 1);
    }
    const outcomes = await t.services.metrics.jobOutcomes.get();
    const retries = outcomes.values.find((v) => v.labels.outcome === 'retry')?.value;
    expect(retries).toBe(2 * FAULTS.length);
    expect(await memories()).toEqual([]);
  });
});

describe('when it comes back', () => {
  it('the worker writes the memories, exactly once', async () => {
    voyage.setFaults({});
    await makeJobsDue();
    expect(await t.drainJobs()).toBe(FAULTS.length);
    const done = await jobs();
    expect(done.every((j) => j.status === 'DONE' && j.attempts === JOB_MAX_ATTEMPTS)).toBe(true);

    const written = await memories();
    expect(written.length).toBeGreaterThanOrEqual(FAULTS.length);
    expect(new Set(written.map((m) => `${m.instanceId}:${m.contentHash}`)).size).toBe(
      written.length,
    );
    const added = await t.services.prisma.memoryHistory.count({
      where: { userId: user.id, action: 'ADDED' },
    });
    expect(added).toBe(written.length);

    // Nothing is left to run, and running again writes nothing more.
    expect(await t.drainJobs()).toBe(0);
    expect(await memories()).toHaveLength(written.length);
  });

  it('and the next turn recalls them', async () => {
    const failures = await recallFailures();
    const turn = await send(t, user.token, sessionId, 'Am I allergic to cats?');
    expect(turn.recalled.profile.map((r) => r.memory.content)).toContain(
      'User is allergic to cats',
    );
    expect(await recallFailures()).toBe(failures);
  });
});
