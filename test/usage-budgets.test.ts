import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eraseUser } from '../src/account/erase.js';
import { fitSection } from '../src/chat/prompt-budget.js';
import { ManualClock } from '../src/time/clock.js';
import { codesOf, createTestContext, dataOf, type TestContext } from './helpers/app.js';
import { personaIds, send, startChat } from './helpers/chat.js';
import { SEND_MESSAGE } from './helpers/operations.js';

/**
 * Issue 18: daily budgets trip and reset on the domain clock (a ManualClock, no sleeping);
 * extraction over the memory budget waits for the next UTC day and is never dropped; usage is
 * readable by its user and admins only, through every entry point. Offline providers: their
 * usage is a word count, flagged as estimated.
 */

const EVENING = new Date('2026-12-03T22:00:00.000Z');
const MIDNIGHT = '2026-12-04T00:00:00.000Z';

interface Row {
  kind: string;
  model: string;
  requests: bigint;
  estimated_requests: bigint;
}

async function chatWith(t: TestContext, token: string) {
  const personas = await personaIds(t, token);
  return startChat(t, token, personas.mira ?? '');
}

const rowsOf = (t: TestContext, userId: string) =>
  t.database.db.prisma.$queryRaw<Row[]>`
    SELECT kind, model, requests, estimated_requests FROM usage_ledger
    WHERE user_id = ${userId}::uuid ORDER BY kind, model, day`;

describe('chat budget', () => {
  const clock = new ManualClock(EVENING);
  let t: TestContext;
  beforeAll(async () => {
    t = await createTestContext({ now: clock.now, env: { CHAT_DAILY_TOKEN_BUDGET: '20' } });
  });
  afterAll(() => t?.close());

  it('refuses turns once the day is spent, says when it resets, and answers again the next UTC day', async () => {
    clock.set(EVENING);
    const user = await t.newUser();
    const { sessionId } = await chatWith(t, user.token);
    // The offline companion's usage is words: a prompt is far over 20.
    await send(t, user.token, sessionId, 'I love hiking in the mountains');
    const refused = await t.gql(
      SEND_MESSAGE,
      { sessionId, content: 'Tell me a story', clientMessageId: 'late-1' },
      user.token,
    );
    expect(codesOf(refused)).toEqual(['BUDGET_EXCEEDED']);
    expect(refused.errors?.[0]?.extensions).toMatchObject({
      budget: 'chat',
      resetsAt: MIDNIGHT,
      retryAfterSeconds: 2 * 3600,
    });
    const usage = dataOf(
      await t.gql<{
        viewer: {
          usage: { chatBudget: { exceeded: boolean; resetsAt: string; tokenLimit: number } };
        };
      }>('{ viewer { usage { chatBudget { exceeded resetsAt tokenLimit } } } }', {}, user.token),
    );
    expect(usage.viewer.usage.chatBudget).toEqual({
      exceeded: true,
      resetsAt: MIDNIGHT,
      tokenLimit: 20,
    });
    const metric = await t.services.metrics.registry.getSingleMetricAsString(
      'companion_budget_exceeded_total',
    );
    expect(metric).toContain('companion_budget_exceeded_total{budget="chat"} 1');

    // Another user has their own budget.
    const other = await t.newUser();
    const theirs = await chatWith(t, other.token);
    await send(t, other.token, theirs.sessionId, 'Hello there');

    // The next UTC day: the same message (kept, same clientMessageId) is answered.
    clock.set(new Date(MIDNIGHT));
    const answered = await send(t, user.token, sessionId, 'Tell me a story', 'late-1');
    expect(answered.reply.content.length).toBeGreaterThan(0);

    const rows = await rowsOf(t, user.id);
    const chat = rows.filter((r) => r.kind === 'chat');
    // One row per day (same model); offline, every request's count is an estimate, and says so.
    expect(chat.map((r) => [Number(r.requests), Number(r.estimated_requests)])).toEqual([
      [1, 1],
      [1, 1],
    ]);
    const days = await t.database.db.prisma.$queryRaw<{ day: string }[]>`
      SELECT DISTINCT to_char(day, 'YYYY-MM-DD') AS day FROM usage_ledger
      WHERE user_id = ${user.id}::uuid ORDER BY day`;
    expect(days.map((d) => d.day)).toEqual(['2026-12-03', '2026-12-04']);
  });
});

describe('memory budget', () => {
  const clock = new ManualClock(EVENING);
  let t: TestContext;
  beforeAll(async () => {
    t = await createTestContext({ now: clock.now, env: { MEMORY_DAILY_TOKEN_BUDGET: '1' } });
  });
  afterAll(() => t?.close());

  it('defers extraction to the next UTC day without using an attempt, then runs it', async () => {
    clock.set(EVENING);
    const user = await t.newUser();
    const { sessionId } = await chatWith(t, user.token);
    // The turn's recall query embedding alone spends the memory budget of 1 token.
    await send(t, user.token, sessionId, 'I work as a nurse in Lisbon');
    await t.drainJobs();
    const prisma = t.database.db.prisma;
    const [job] = await prisma.$queryRaw<
      { status: string; attempts: number; wait_s: number }[]
    >`SELECT status::text, attempts, extract(epoch FROM run_at - now())::float8 AS wait_s
      FROM jobs WHERE user_id = ${user.id}::uuid`;
    expect(job?.status).toBe('PENDING');
    expect(job?.attempts).toBe(0);
    // Two hours to midnight UTC on the domain clock; the database's clock runs the delay.
    expect(job?.wait_s).toBeGreaterThan(2 * 3600 - 120);
    expect(job?.wait_s).toBeLessThanOrEqual(2 * 3600);
    const memories = await prisma.memory.count({ where: { userId: user.id } });
    expect(memories).toBe(0);
    const metric = await t.services.metrics.registry.getSingleMetricAsString(
      'companion_budget_exceeded_total',
    );
    expect(metric).toContain('companion_budget_exceeded_total{budget="memory"} 1');

    // The next day comes (the domain clock, and the job's time on the database's clock).
    clock.set(new Date(MIDNIGHT));
    await prisma.$executeRaw`UPDATE jobs SET run_at = now() WHERE user_id = ${user.id}::uuid`;
    await t.drainJobs();
    const [done] = await prisma.$queryRaw<{ status: string }[]>`
      SELECT status::text FROM jobs WHERE user_id = ${user.id}::uuid`;
    expect(done?.status).toBe('DONE');
    expect(await prisma.memory.count({ where: { userId: user.id } })).toBeGreaterThan(0);
    const kinds = (await rowsOf(t, user.id)).map((r) => `${r.kind}:${r.model}`);
    expect(kinds).toEqual(
      expect.arrayContaining([
        'chat:offline-companion-v1',
        'embedding:use-lite-512',
        'extraction:offline-extractor',
      ]),
    );
  });
});

describe('who may read usage', () => {
  let t: TestContext;
  beforeAll(async () => {
    t = await createTestContext();
  });
  afterAll(() => t?.close());

  it('the user and admins only, through every entry point; erasure removes the rows', async () => {
    const alice = await t.newUser();
    const bob = await t.newUser();
    const admin = await t.newUser({ admin: true });
    const chat = await chatWith(t, alice.token);
    await send(t, alice.token, chat.sessionId, 'I have two cats named Pixel and Byte');
    const bobChat = await chatWith(t, bob.token);
    await send(t, bob.token, bobChat.sessionId, 'Hi');
    const aliceNode = dataOf(
      await t.gql<{ viewer: { id: string } }>('{ viewer { id } }', {}, alice.token),
    ).viewer.id;

    // Bob: node(id) of Alice is null, userUsage and topUsersByCost are FORBIDDEN.
    const viaNode = await t.gql(
      `query($id: ID!) { node(id: $id) { ... on User { usage { today { requests } } } } }`,
      { id: aliceNode },
      bob.token,
    );
    expect(viaNode.data).toEqual({ node: null });
    const direct = await t.gql(
      `query($id: ID!) { userUsage(userId: $id) { today { requests } } }`,
      { id: alice.id },
      bob.token,
    );
    expect(codesOf(direct)).toEqual(['FORBIDDEN']);
    const top = await t.gql('{ topUsersByCost { edges { node { userId } } } }', {}, bob.token);
    expect(codesOf(top)).toEqual(['FORBIDDEN']);
    const mine = dataOf(
      await t.gql<{ viewer: { usage: { today: { requests: number } } } }>(
        '{ viewer { usage { today { requests } } } }',
        {},
        bob.token,
      ),
    );
    expect(mine.viewer.usage.today.requests).toBe(2); // his own turn: a query embedding and a reply

    // An admin reads anyone, directly or through node(id), and ranks users, page by page.
    const asAdmin = dataOf(
      await t.gql<{
        userUsage: { today: { requests: number } };
        node: { usage: { today: { requests: number } } };
      }>(
        `query($id: ID!, $node: ID!) { userUsage(userId: $id) { today { requests } }
           node(id: $node) { ... on User { usage { today { requests } } } } }`,
        { id: alice.id, node: aliceNode },
        admin.token,
      ),
    );
    expect(asAdmin.userUsage.today.requests).toBe(2);
    expect(asAdmin.node.usage.today.requests).toBe(2);
    type Page = {
      topUsersByCost: {
        edges: {
          cursor: string;
          node: { userId: string; estimatedCostUsd: number; user: { id: string } | null };
        }[];
        pageInfo: { hasNextPage: boolean; endCursor: string };
      };
    };
    const TOP = `query($after: String) { topUsersByCost(first: 1, after: $after) {
      edges { cursor node { userId estimatedCostUsd user { id } } } pageInfo { hasNextPage endCursor } } }`;
    const first = dataOf(await t.gql<Page>(TOP, {}, admin.token)).topUsersByCost;
    expect(first.edges).toHaveLength(1);
    expect(first.pageInfo.hasNextPage).toBe(true);
    const second = dataOf(
      await t.gql<Page>(TOP, { after: first.pageInfo.endCursor }, admin.token),
    ).topUsersByCost;
    expect(second.edges).toHaveLength(1);
    expect(new Set([first.edges[0]?.node.userId, second.edges[0]?.node.userId])).toEqual(
      new Set([alice.id, bob.id]),
    );
    // The offline models are priced at 0: a known zero, not unknown.
    expect(first.edges[0]?.node.estimatedCostUsd).toBe(0);
    const bad = await t.gql(TOP, { after: 'bm90LWEtY3Vyc29y' }, admin.token);
    expect(codesOf(bad)).toEqual(['BAD_USER_INPUT']);

    // Erasure takes the ledger rows with everything else.
    expect((await rowsOf(t, alice.id)).length).toBeGreaterThan(0);
    const receipt = await eraseUser(t.database.db.prisma, alice.id);
    expect(receipt.deleted.find((d) => d.kind === 'usage_ledger')?.count).toBeGreaterThan(0);
    expect(await rowsOf(t, alice.id)).toEqual([]);
  });
});

describe('memory sections of the prompt', () => {
  it('keep the best-ranked memories that fit the token budget (characters / 4)', () => {
    const now = new Date('2026-12-03T12:00:00Z');
    const memory = (content: string, score: number) => ({
      score,
      memory: { content, createdAt: now, occurredAt: null } as never,
    });
    // Each line: "- " + 200 chars + " (told today)" + newline = 216 chars = 54 tokens.
    const items = [
      memory('a'.repeat(200), 0.9),
      memory('b'.repeat(200), 0.8),
      memory('c'.repeat(200), 0.7),
    ];
    expect(fitSection(items, 200, now, 'UTC').map((m) => m.score)).toEqual([0.9, 0.8, 0.7]);
    expect(fitSection(items, 108, now, 'UTC').map((m) => m.score)).toEqual([0.9, 0.8]);
    expect(fitSection(items, 107, now, 'UTC').map((m) => m.score)).toEqual([0.9]);
    expect(fitSection(items, 53, now, 'UTC')).toEqual([]);
  });
});

describe('USAGE_PRICES', () => {
  it('adds to the documented defaults and refuses what is not a price table', async () => {
    const { parseEnv } = await import('../src/env.js');
    const { usagePolicyFrom } = await import('../src/composition.js');
    const policy = usagePolicyFrom(
      parseEnv({ USAGE_PRICES: '{"acme/big": {"input": 3, "output": 15}}' }),
    );
    expect(policy.prices.get('acme/big')).toEqual({ input: 3, output: 15 });
    expect(policy.prices.get('openai/gpt-4o-mini')).toEqual({ input: 0.15, output: 0.6 });
    expect(policy.chat).toBeNull();
    expect(policy.memory).toBeNull();
    expect(() => parseEnv({ USAGE_PRICES: 'cheap' })).toThrow(/USAGE_PRICES/);
    expect(() => parseEnv({ USAGE_PRICES: '{"m": {"input": -1, "output": 0}}' })).toThrow(
      /USAGE_PRICES/,
    );
  });
});

describe('ledger statements', () => {
  let t: TestContext;
  beforeAll(async () => {
    t = await createTestContext();
  });
  afterAll(() => t?.close());

  it('adds to one row per user, day, kind and model, also as a CTE of another statement, and prunes old days', async () => {
    const { ledgerUpsertSql, pruneLedger, recordUsage } = await import('../src/usage/ledger.js');
    const { Prisma } = await import('@prisma/client');
    const prisma = t.database.db.prisma;
    const user = await t.newUser();
    dataOf(await t.gql('{ viewer { id } }', {}, user.token)); // provisions the user
    const entry = (model: string, input: number) => ({
      kind: 'chat' as const,
      model,
      requests: 1,
      inputTokens: input,
      outputTokens: 2,
      estimatedRequests: 0,
    });
    const day = new Date('2026-12-03T10:00:00Z');
    await recordUsage(prisma, user.id, day, [entry('m1', 10), entry('m1', 5), entry('m2', 1)]);
    const cte = ledgerUpsertSql(user.id, day, [entry('m1', 100)]);
    if (!cte) throw new Error('no statement');
    // As a data-modifying CTE, the way a turn can fold it into a statement it already makes.
    await prisma.$queryRaw(Prisma.sql`WITH usage AS (${cte}) SELECT 1 AS one`);
    await recordUsage(prisma, user.id, new Date('2025-01-01T00:00:00Z'), [entry('m1', 7)]);
    // A user who does not exist (erased meanwhile) gets no row and no error.
    await recordUsage(prisma, '00000000-0000-4000-8000-000000000000', day, [entry('m1', 1)]);
    const rows = await prisma.$queryRaw<
      { day: string; model: string; requests: bigint; input: bigint }[]
    >`
      SELECT to_char(day, 'YYYY-MM-DD') AS day, model, requests, input_tokens AS input
      FROM usage_ledger WHERE user_id = ${user.id}::uuid ORDER BY day, model`;
    expect(rows.map((r) => [r.day, r.model, Number(r.requests), Number(r.input)])).toEqual([
      ['2025-01-01', 'm1', 1, 7],
      ['2026-12-03', 'm1', 3, 115],
      ['2026-12-03', 'm2', 1, 1],
    ]);
    expect(
      await prisma.usageLedger.count({ where: { userId: '00000000-0000-4000-8000-000000000000' } }),
    ).toBe(0);
    expect(await pruneLedger(prisma, day, 400)).toBe(1);
    expect(await prisma.usageLedger.count({ where: { userId: user.id } })).toBe(2);
  });
});
