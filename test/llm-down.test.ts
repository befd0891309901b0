import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type OpenRouterFake, startOpenRouterFake } from './fakes/openrouter-fake.js';
import { codesOf, createTestContext, dataOf, type TestContext } from './helpers/app.js';
import { personaIds, startChat } from './helpers/chat.js';
import { SEND_MESSAGE, type SendMessageData } from './helpers/operations.js';
import { fakeProviderEnv } from './helpers/providers.js';
import { CLIENT_TIMEOUT_MS } from './helpers/timeouts.js';

/**
 * The chat model down or hanging: the turn answers a clear, retryable error in bounded time,
 * the user's message is kept, and the same clientMessageId answers once the model is back.
 */
let t: TestContext;
let openrouter: OpenRouterFake;
// Only the 'hang' fault reaches it: a healthy answer after the outage never does, however busy
// the machine (at 300 ms a slow healthy answer timed out too, and the retry found no reply).
const TIMEOUT_MS = CLIENT_TIMEOUT_MS;

beforeAll(async () => {
  openrouter = await startOpenRouterFake({ responder: () => 'I am back.' });
  t = await createTestContext({
    env: {
      ...fakeProviderEnv({ openrouter }),
      OPENROUTER_TIMEOUT_MS: String(TIMEOUT_MS),
      OPENROUTER_MAX_RETRIES: '1',
    },
  });
});
afterAll(async () => {
  await t?.close();
  await openrouter?.close();
});

describe.each([
  { fault: 'hang' as const, name: 'timing out' },
  { fault: '503' as const, name: 'answering 503' },
])('the chat model $name', ({ fault }) => {
  it('answers SERVICE_UNAVAILABLE after bounded attempts, keeps the message, and a retry answers it', async () => {
    const user = await t.newUser();
    const { mira } = await personaIds(t, user.token);
    const { sessionId } = await startChat(t, user.token, mira as string);
    const vars = { sessionId, content: 'Are you there?', clientMessageId: `down-${fault}` };

    openrouter.setFaults({ probability: 1, kinds: [fault], retryAfter: '0' });
    const before = openrouter.faultsServed;
    const failed = await t.gql<SendMessageData>(SEND_MESSAGE, vars, user.token);
    const attempts = openrouter.faultsServed - before;
    openrouter.setFaults({});

    expect(codesOf(failed)).toEqual(['SERVICE_UNAVAILABLE']);
    expect(failed.errors?.[0]?.extensions?.retryable).toBe(true);
    expect(failed.errors?.[0]?.message).toMatch(/Retry with the same clientMessageId/);
    // Bounded: one attempt and OPENROUTER_MAX_RETRIES (1) more, each given up after
    // TIMEOUT_MS in the hang case; a request that never gave up would hang the test into its
    // timeout. Counted, not timed: on a saturated machine the rest of the turn (the local
    // embedder's recall) takes seconds of its own, which says nothing about the model calls.
    expect(attempts).toBe(2);
    const stored = await t.services.prisma.message.findMany({ where: { userId: user.id } });
    expect(stored.map((m) => [m.role, m.content])).toEqual([['USER', 'Are you there?']]);

    const retried = dataOf(await t.gql<SendMessageData>(SEND_MESSAGE, vars, user.token));
    expect(retried.sendMessage.reply.content).toBe('I am back.');
    const globalId = Buffer.from(`Message:${stored[0]?.id}`).toString('base64');
    expect(retried.sendMessage.userMessage.id).toBe(globalId);
    expect(await t.services.prisma.message.count({ where: { userId: user.id } })).toBe(2);
  });
});
