import { describe, expect, it } from 'vitest';
import {
  OFFLINE_COMPANION_MODEL,
  OfflineCompanion,
  readTraits,
  toSecondPerson,
} from '../../src/providers/llm/offline.js';
import type { ChatRequest, RecalledFact } from '../../src/providers/llm/types.js';
import { LlmError } from '../../src/providers/llm/types.js';

const companion = new OfflineCompanion();

function request(
  userMessage: string,
  recalled: { profile?: RecalledFact[]; relationship?: RecalledFact[] } = {},
  personaTraits: Record<string, unknown> = {},
): ChatRequest {
  return {
    messages: [
      { role: 'system', content: 'You are Mia, a warm companion.' },
      { role: 'user', content: userMessage },
    ],
    context: {
      personaName: 'Mia',
      personaTraits,
      userMessage,
      profile: recalled.profile ?? [],
      relationship: recalled.relationship ?? [],
    },
  };
}

describe('OfflineCompanion', () => {
  it('labels itself offline', () => {
    expect(companion.provider).toBe('offline');
    expect(OFFLINE_COMPANION_MODEL).toBe('offline-companion-v1');
  });

  it('answers from the best profile memory, in the second person', async () => {
    const reply = await companion.complete(
      request('What is my job?', {
        profile: [
          { content: 'User loves hiking', score: 0.31 },
          { content: 'User is a nurse from Lisbon', score: 0.82 },
        ],
      }),
    );
    expect(reply.content).toContain("you're a nurse from Lisbon");
    expect(reply.content).not.toContain('hiking');
    expect(reply.content).not.toMatch(/\bUser\b/);
    expect(reply.model).toBe(OFFLINE_COMPANION_MODEL);
  });

  it('references shared history from the relationship layer', async () => {
    const reply = await companion.complete(
      request('I had a long day.', {
        relationship: [{ content: "User and Mia joked about Mia's terrible puns", score: 0.6 }],
      }),
    );
    expect(reply.content).toContain('I still remember when we joked about my terrible puns.');
  });

  it('is deterministic and varies only with the request', async () => {
    const first = await companion.complete(request('Hello Mia'));
    expect(await companion.complete(request('Hello Mia'))).toEqual(first);
    expect(first.content).toContain('Mia');
  });

  it('reacts to greetings, questions and statements differently', async () => {
    const [greeting, question, statement] = await Promise.all(
      ['Hi there', 'Do you like rain?', 'It rained all day'].map((m) =>
        companion.complete(request(m)),
      ),
    );
    const opener = (text = '') => text.split(/[.!]/)[0];
    const openers = new Set([greeting, question, statement].map((r) => opener(r?.content)));
    expect(openers.size).toBe(3);
    // After a question the companion does not dodge with a question of its own.
    expect(question?.content.endsWith('?')).toBe(false);
  });

  it('speaks in the configured voice and ignores invalid traits', async () => {
    const traits = { tone: 'playful', catchphrase: 'Onwards!', emoji: '🎈' };
    const reply = await companion.complete(request('Hey Mia!', {}, traits));
    expect(reply.content).toContain('🎈');
    expect(reply.content.endsWith('Onwards!')).toBe(true);
    expect(readTraits({ tone: 'grumpy', catchphrase: 42, emoji: 'x'.repeat(50) })).toEqual({
      tone: 'warm',
      catchphrase: null,
      emoji: null,
    });
  });

  it('reports word counts as token usage', async () => {
    const reply = await companion.complete(request('I love hiking in the hills'));
    expect(reply.promptTokens).toBe(6 + 6);
    expect(reply.completionTokens).toBe(reply.content.split(/\s+/).length);
  });

  it('honours an aborted signal', async () => {
    const controller = new AbortController();
    controller.abort();
    const aborted = { ...request('Hi'), signal: controller.signal };
    await expect(companion.complete(aborted)).rejects.toBeInstanceOf(LlmError);
  });
});

describe('toSecondPerson', () => {
  it.each([
    ['User is a nurse from Lisbon', "you're a nurse from Lisbon"],
    ['User loves hiking.', 'you love hiking'],
    ["User's sister lives in Porto", 'your sister lives in Porto'],
    ['User has an interview next week', 'you have an interview next week'],
    ['The user really enjoys jazz', 'you really enjoy jazz'],
    ['User watches anime', 'you watch anime'],
    ["User doesn't like cats", "you don't like cats"],
    ['User loves their dog Rex', 'you love your dog Rex'],
    ["User's parents sold their house", 'your parents sold their house'],
    ["User and Mia joked about Mia's terrible puns", 'we joked about my terrible puns'],
    ["User and Mia's first chat was about books", 'our first chat was about books'],
    [
      'User promised Mia User would tell Mia how the interview went',
      'you promised me you would tell me how the interview went',
    ],
    ['User thinks Mia is funny', "you think I'm funny"],
    ['Mia made User laugh', 'I made you laugh'],
    ['Yesterday User went to Porto', 'yesterday you went to Porto'],
    ['Users of Linux are fun', 'Users of Linux are fun'],
  ])('%s → %s', (memory, expected) => {
    expect(toSecondPerson(memory, 'Mia')).toBe(expected);
  });
});
