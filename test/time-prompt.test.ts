import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPrompt } from '../src/chat/prompt.js';
import type { MemoryRow } from '../src/memory/store.js';
import { ManualClock } from '../src/time/clock.js';
import { type OpenRouterFake, startOpenRouterFake } from './fakes/openrouter-fake.js';
import { createTestContext, dataOf, type TestContext } from './helpers/app.js';
import { personaIds, send, startChat } from './helpers/chat.js';
import { fakeProviderEnv } from './helpers/providers.js';

/**
 * The prompt's time lines and the LLM extractor's `occurredAt`, end to end through the
 * OpenRouter fake (real client, real wire format): the extraction request carries the user's
 * local date, the model's "YYYY-MM-DD" becomes the start of that day in the user's zone, and
 * the chat prompt shows now, the last talk, each memory's dates and the due follow-up.
 */
const AUCKLAND = 'Pacific/Auckland';
const THU_2330_AUCKLAND = new Date('2026-12-03T10:30:00Z');
const SAT_0900_AUCKLAND = new Date('2026-12-04T20:00:00Z');
const CHAT_MODEL = 'chat/model';
const EXTRACTION_MODEL = 'extract/model';

let t: TestContext;
let fake: OpenRouterFake;
const clock = new ManualClock(THU_2330_AUCKLAND);
const systemPrompts = () =>
  fake.requests
    .filter((r) => r.body?.model === CHAT_MODEL)
    .map((r) => r.body?.messages[0]?.content ?? '');

beforeAll(async () => {
  fake = await startOpenRouterFake({
    responder: (body) => {
      if (body.model !== EXTRACTION_MODEL) return 'Lovely to hear from you.';
      const said = body.messages.at(-1)?.content ?? '';
      if (!said.includes('audition')) return '{"memories": []}';
      // What a model answers when told the message's local date is Thursday 3 December.
      return JSON.stringify({
        memories: [
          {
            content: 'User has a theatre audition on 2026-12-04',
            category: 'event',
            layer: 'PROFILE',
            confidence: 0.9,
            supersedes: null,
            occurredAt: '2026-12-04',
          },
          {
            content: 'User was born on a leap day',
            category: 'fact',
            layer: 'PROFILE',
            confidence: 0.9,
            supersedes: null,
            occurredAt: '2026-02-30',
          },
        ],
      });
    },
  });
  t = await createTestContext({
    now: clock.now,
    env: {
      ...fakeProviderEnv({ openrouter: fake }),
      OPENROUTER_CHAT_MODEL: CHAT_MODEL,
      OPENROUTER_EXTRACTION_MODEL: EXTRACTION_MODEL,
      OPENROUTER_MAX_RETRIES: '0',
    },
  });
});
afterAll(async () => {
  await t?.close();
  await fake?.close();
});

describe('time through the OpenRouter fake', () => {
  it('extraction sees local time; occurredAt is validated; the prompt carries the time lines', async () => {
    const user = await t.newUser({ zoneinfo: AUCKLAND });
    const mira = (await personaIds(t, user.token)).mira as string;
    const chat = await startChat(t, user.token, mira);
    await send(t, user.token, chat.sessionId, 'My theatre audition is tomorrow!');
    await t.drainJobs();

    const extraction = fake.requests.find((r) => r.body?.model === EXTRACTION_MODEL);
    expect(extraction?.body?.messages[1]?.content).toContain(
      'Message time: Thursday 3 December 2026, 23:30 in Pacific/Auckland (UTC+13:00); UTC 2026-12-03T10:30:00.000Z',
    );
    const [first] = systemPrompts();
    expect(first).toContain(
      "Now, in the user's time zone: Thursday 3 December 2026, 23:30 (Pacific/Auckland, UTC+13:00).",
    );
    expect(first).toContain('This is your first conversation with the user.');
    expect(first).not.toContain('## Follow up');

    const rows = await t.services.prisma.memory.findMany({
      where: { userId: user.id },
      orderBy: { content: 'asc' },
      select: { content: true, occurredAt: true },
    });
    // "2026-12-04" is a day in Auckland: it starts at 11:00 UTC the day before. 30 February
    // is no day: the date is dropped, the memory kept.
    expect(rows).toEqual([
      {
        content: 'User has a theatre audition on 2026-12-04',
        occurredAt: new Date('2026-12-03T11:00:00.000Z'),
      },
      { content: 'User was born on a leap day', occurredAt: null },
    ]);

    clock.set(SAT_0900_AUCKLAND);
    await send(t, user.token, chat.sessionId, 'Good morning, I am back');
    const second = systemPrompts().at(-1) ?? '';
    expect(second).toContain(
      "Now, in the user's time zone: Saturday 5 December 2026, 09:00 (Pacific/Auckland, UTC+13:00).",
    );
    expect(second).toContain(
      'The user last talked to you 2 days ago (Thu 3 Dec); greet them accordingly.',
    );
    expect(second).toMatch(
      /- User has a theatre audition on 2026-12-04 \(told 2 days ago, Thu 3 Dec; on Fri 4 Dec\)/,
    );
    expect(second).toContain(
      '## Follow up\nThe user told you about this and its day has now passed: "User has a theatre audition on 2026-12-04" (on Fri 4 Dec).',
    );
    const states = dataOf(
      await t.gql<{ followUps: { edges: { node: { state: string } }[] } }>(
        '{ followUps { edges { node { state } } } }',
        {},
        user.token,
      ),
    );
    expect(states.followUps.edges).toEqual([{ node: { state: 'ASKED' } }]);

    await send(t, user.token, chat.sessionId, 'It went well, thanks');
    expect(systemPrompts().at(-1)).not.toContain('## Follow up');
  });
});

describe('buildPrompt time lines', () => {
  const memory = (content: string, createdAt: string, occurredAt: string | null): MemoryRow => ({
    id: content,
    userId: 'u',
    instanceId: null,
    sourceMessageId: null,
    sourceSessionId: null,
    content,
    contentHash: '',
    category: 'FACT',
    confidence: null,
    embeddingModel: 'm',
    supersededById: null,
    supersededAt: null,
    expiresAt: null,
    occurredAt: occurredAt ? new Date(occurredAt) : null,
    createdAt: new Date(createdAt),
    updatedAt: new Date(createdAt),
  });

  it("dates every memory in the user's calendar, today included", () => {
    const [system] = buildPrompt({
      persona: { name: 'Mira', systemPrompt: 'You are Mira.' },
      profile: [
        { memory: memory('User is a nurse', '2026-11-12T09:00:00Z', null), score: 1 },
        { memory: memory('User likes tea', '2026-12-03T10:00:00Z', null), score: 1 },
      ],
      relationship: [
        {
          memory: memory(
            'User and Mira plan a picnic',
            '2025-12-01T09:00:00Z',
            '2026-12-06T11:00:00Z',
          ),
          score: 1,
        },
      ],
      history: [],
      userMessage: 'hi',
      now: THU_2330_AUCKLAND,
      timeZone: AUCKLAND,
      lastTalkAt: new Date('2026-12-03T01:00:00Z'),
    });
    const text = system?.content ?? '';
    expect(text).toContain('- User is a nurse (told 3 weeks ago, Thu 12 Nov)');
    expect(text).toContain('- User likes tea (told today)');
    expect(text).toContain(
      '- User and Mira plan a picnic (told over a year ago, Mon 1 Dec 2025; on Mon 7 Dec)',
    );
    expect(text).toContain('The user last talked to you earlier today.');
  });
});
