import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConcurrencyGate, RateLimiter, UserLimits } from '../src/limits.js';
import { OfflineCompanion } from '../src/providers/llm/offline.js';
import type { ChatCompletion, ChatModel, ChatRequest } from '../src/providers/llm/types.js';
import { codesOf, createTestContext, dataOf, type TestContext } from './helpers/app.js';
import { personaIds, startChat } from './helpers/chat.js';
import { SEND_MESSAGE, START_CHAT } from './helpers/operations.js';

/** A chat model that holds replies while the test keeps it closed. */
function gatedModel() {
  const offline = new OfflineCompanion();
  let waiters: (() => void)[] = [];
  let closed = true;
  let waiting = 0;
  const pass = async () => {
    waiting++;
    if (closed) await new Promise<void>((resolve) => waiters.push(resolve));
  };
  const model: ChatModel = {
    provider: 'offline',
    async complete(request: ChatRequest): Promise<ChatCompletion> {
      await pass();
      return offline.complete(request);
    },
    async stream(request, onDelta) {
      await pass();
      return offline.stream(request, onDelta);
    },
  };
  return {
    model,
    get waiting() {
      return waiting;
    },
    open() {
      closed = false;
      for (const resolve of waiters) resolve();
      waiters = [];
    },
    close() {
      closed = true;
    },
  };
}

describe('per-user chat limits (GraphQL)', () => {
  let t: TestContext;
  const gated = gatedModel();

  beforeAll(async () => {
    t = await createTestContext({
      env: {
        CHAT_TURNS_PER_MINUTE: '3',
        CHAT_STARTS_PER_MINUTE: '2',
        CHAT_MAX_CONCURRENT_TURNS: '1',
        MEMORY_EMBEDS_PER_MINUTE: '2',
      },
      providers: { chat: gated.model },
    });
  });
  afterAll(() => t.close());

  const turn = (token: string, sessionId: string, clientMessageId: string = randomUUID()) =>
    t.gql(SEND_MESSAGE, { sessionId, content: 'hello there', clientMessageId }, token);

  it('caps concurrent turns per user, and admits the next one once the first ended', async () => {
    const user = await t.newUser();
    const { mira } = await personaIds(t, user.token);
    const { sessionId } = await startChat(t, user.token, mira as string);

    const first = turn(user.token, sessionId);
    await expect.poll(() => gated.waiting, { timeout: 15_000 }).toBe(1);
    const second = await turn(user.token, sessionId);
    expect(codesOf(second)).toEqual(['RATE_LIMITED']);
    expect(second.errors?.[0]?.extensions).toMatchObject({ retryable: true, retryAfterSeconds: 1 });
    // Nothing of the refused turn was stored.
    expect(await t.services.prisma.message.count({ where: { userId: user.id } })).toBe(1);

    gated.open();
    dataOf(await first);
    // The slot is free again.
    dataOf(await turn(user.token, sessionId));
  });

  it('a re-send of the running turn waits for it without needing a slot of its own', async () => {
    gated.close();
    const user = await t.newUser();
    const { mira } = await personaIds(t, user.token);
    const { sessionId } = await startChat(t, user.token, mira as string);
    const waitingBefore = gated.waiting;
    const first = turn(user.token, sessionId, 'same-id');
    await expect.poll(() => gated.waiting, { timeout: 15_000 }).toBe(waitingBefore + 1);
    const resent = turn(user.token, sessionId, 'same-id');
    await new Promise((resolve) => setTimeout(resolve, 100));
    gated.open();
    const [a, b] = await Promise.all([first, resent]);
    const replyOf = (r: typeof a) => dataOf(r) as { sendMessage: { reply: { id: string } } };
    expect(replyOf(b).sendMessage.reply.id).toBe(replyOf(a).sendMessage.reply.id);
    // The model was asked once.
    expect(gated.waiting).toBe(waitingBefore + 1);
  });

  it('limits turns per minute per user, with a retry hint, and leaves other users alone', async () => {
    const user = await t.newUser();
    const other = await t.newUser();
    const { mira } = await personaIds(t, user.token);
    const { sessionId } = await startChat(t, user.token, mira as string);
    const { sessionId: otherSession } = await startChat(t, other.token, mira as string);
    gated.open();
    for (let i = 0; i < 3; i++) dataOf(await turn(user.token, sessionId));
    const over = await turn(user.token, sessionId);
    expect(codesOf(over)).toEqual(['RATE_LIMITED']);
    const seconds = over.errors?.[0]?.extensions?.retryAfterSeconds as number;
    expect(seconds).toBeGreaterThanOrEqual(1);
    expect(seconds).toBeLessThanOrEqual(20);
    expect(over.errors?.[0]?.message).toMatch(/Retry in \d+ s/);
    dataOf(await turn(other.token, otherSession));
  });

  it('limits startChat per minute per user', async () => {
    const user = await t.newUser();
    const { mira } = await personaIds(t, user.token);
    dataOf(await t.gql(START_CHAT, { personaId: mira }, user.token));
    dataOf(await t.gql(START_CHAT, { personaId: mira }, user.token));
    const over = await t.gql(START_CHAT, { personaId: mira }, user.token);
    expect(codesOf(over)).toEqual(['RATE_LIMITED']);
    expect(await t.services.prisma.chatSession.count({ where: { userId: user.id } })).toBe(2);
  });

  it('limits memory searches and edits per minute per user (listings are free)', async () => {
    const user = await t.newUser();
    const search = (text: string | null) =>
      t.gql(
        'query($s: String) { profileMemories(search: $s) { edges { node { id } } } }',
        { s: text },
        user.token,
      );
    dataOf(await search('my job'));
    // A memory edit embeds too, and shares the budget with searches.
    const memory = await t.services.prisma.memory.create({
      data: {
        userId: user.id,
        content: 'User likes tea',
        contentHash: randomUUID(),
        category: 'PREFERENCE',
        embeddingModel: 'use-lite-512',
      },
    });
    const edit = (content: string) =>
      t.gql(
        'mutation($i: UpdateMemoryInput!) { updateMemory(input: $i) { memory { content } } }',
        { i: { memoryId: Buffer.from(`Memory:${memory.id}`).toString('base64'), content } },
        user.token,
      );
    dataOf(await edit('User likes green tea'));
    expect(codesOf(await edit('User likes black tea'))).toEqual(['RATE_LIMITED']);
    const over = await search('my city');
    expect(codesOf(over)).toEqual(['RATE_LIMITED']);
    expect(over.errors?.[0]?.extensions?.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    dataOf(await search(null));
  });
});

describe('limit primitives', () => {
  it('refills a token bucket evenly over a minute', () => {
    const limiter = new RateLimiter(6, 100);
    const t0 = 1_000_000;
    for (let i = 0; i < 6; i++) expect(limiter.take('u', t0)).toBe(0);
    expect(limiter.take('u', t0)).toBe(10_000); // 6 per minute: one every 10 s
    expect(limiter.take('u', t0 + 9_999)).toBeGreaterThan(0);
    expect(limiter.take('u', t0 + 10_000)).toBe(0);
  });

  it('keeps state for a bounded number of users', () => {
    const limiter = new RateLimiter(1, 100);
    for (let i = 0; i < 10_000; i++) limiter.take(`user-${i}`);
    expect(limiter.size).toBe(100);
  });

  it('holds a concurrency entry only while work runs; release is idempotent', () => {
    const gate = new ConcurrencyGate(2);
    const a = gate.tryAcquire('u');
    const b = gate.tryAcquire('u');
    expect(a && b).toBeTruthy();
    expect(gate.tryAcquire('u')).toBeNull();
    a?.();
    a?.();
    expect(gate.tryAcquire('u')).not.toBeNull();
    b?.();
    expect(gate.size).toBe(1);
  });

  it('a refused turn does not use up a rate token', async () => {
    const limits = new UserLimits({
      turnsPerMinute: 2,
      startsPerMinute: 1,
      embedsPerMinute: 1,
      maxConcurrentTurns: 1,
      trackedUsers: 100,
    });
    const release = await limits.admitTurn('u');
    await expect(limits.admitTurn('u')).rejects.toThrow(/at a time/);
    release();
    (await limits.admitTurn('u'))();
    await expect(limits.admitTurn('u')).rejects.toThrow(/Too many messages/);
    expect(limits.stats()).toEqual({ trackedUsers: 1, usersWithTurnsInFlight: 0 });
  });
});
