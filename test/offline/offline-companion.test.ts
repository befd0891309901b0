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

/** A turn later the same day as the last talk, unless `time` says otherwise. */
function request(
  userMessage: string,
  recalled: { profile?: RecalledFact[]; relationship?: RecalledFact[] } = {},
  personaTraits: Record<string, unknown> = {},
  time: { daysSinceLastTalk?: number; history?: ChatRequest['messages'] } = {
    daysSinceLastTalk: 0,
  },
): ChatRequest {
  return {
    messages: [
      { role: 'system', content: 'You are Mia, a warm companion.' },
      ...(time.history ?? []),
      { role: 'user', content: userMessage },
    ],
    context: {
      personaName: 'Mia',
      personaTraits,
      userMessage,
      profile: recalled.profile ?? [],
      relationship: recalled.relationship ?? [],
      ...(time.daysSinceLastTalk === undefined
        ? {}
        : { daysSinceLastTalk: time.daysSinceLastTalk }),
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
    // A first talk (no last talk, no history): the persona introduces itself by name.
    const first = await companion.complete(request('Hello Mia', {}, {}, {}));
    expect(await companion.complete(request('Hello Mia', {}, {}, {}))).toEqual(first);
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
    // The catchphrase is one of the closing lines (never two replies in a row, tested below).
    const closings = await Promise.all(
      ['Hey Mia!', 'I baked bread', 'I went running', 'It rained', 'I like tea'].map(
        async (m) => (await companion.complete(request(m, {}, traits))).content,
      ),
    );
    expect(closings.some((c) => c.endsWith('Onwards!'))).toBe(true);
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

describe('OfflineCompanion listens', () => {
  const home: RecalledFact = { content: 'User lives in Lisbon', score: 0.41 };
  const job: RecalledFact = { content: 'User works as a vet in Porto', score: 0.77 };

  it('answers the question with the memory that answers it, not the best-scored one', async () => {
    const where = await companion.complete(request('Where do I live?', { profile: [job, home] }));
    expect(where.content).toContain('you live in Lisbon');
    expect(where.content).not.toMatch(/vet|Porto/);
    const work = await companion.complete(request("What's my job?", { profile: [home, job] }));
    expect(work.content).toContain('you work as a vet in Porto');
    expect(work.content).not.toContain('Lisbon');
  });

  it('says so when no recalled memory answers, instead of quoting one', async () => {
    const reply = await companion.complete(
      request("What's my sister's name?", { profile: [home, job] }),
    );
    expect(reply.content).toMatch(/haven't told me|told me that yet/);
    expect(reply.content).not.toMatch(/Lisbon|vet/);
  });

  it('hears back a memory on the topic of a statement, and none off topic', async () => {
    const interview = await companion.complete(
      request('I have a job interview tomorrow', { profile: [home, job] }),
    );
    expect(interview.content).toContain('you work as a vet in Porto');
    expect(interview.content).not.toContain('Lisbon');
    const wedding = await companion.complete(
      request('My sister Lucia is getting married', { profile: [home, job] }),
    );
    expect(wedding.content).not.toMatch(/Lisbon|vet/);
  });

  it('greets by the time since the last talk: first talk, same day, days later', async () => {
    const first = await companion.complete(request('Hi!', {}, {}, {}));
    expect(first.content).toMatch(/I'm Mia/);
    expect(first.content).not.toMatch(/again|back|since we last talked/i);
    // A first message that is not a greeting still meets the user first.
    const firstStatement = await companion.complete(request('I love hiking', {}, {}, {}));
    expect(firstStatement.content).toMatch(/I'm Mia/);

    const sameDay = await companion.complete(request('Hi!', {}, {}, { daysSinceLastTalk: 0 }));
    expect(sameDay.content).toMatch(/again|Welcome back/);
    expect(sameDay.content).not.toMatch(/meet you|since we last talked/);

    const later = await companion.complete(request('Hi!', {}, {}, { daysSinceLastTalk: 3 }));
    expect(later.content).toMatch(/It's been 3 days since we last talked/);
    expect(later.content).not.toMatch(/meet you|Hello again/);
  });

  it('never ends two replies in a row with the same closing line, catchphrase included', async () => {
    const traits = { tone: 'warm', catchphrase: 'Tell me more?' };
    const history: ChatRequest['messages'] = [];
    const closings: string[] = [];
    const said = ['Hi', 'I went running', 'It rained', 'I baked bread', 'Work was long'];
    for (let i = 0; i < 20; i++) {
      const message = said[i % said.length] as string;
      const reply = await companion.complete(
        request(message, { profile: [home] }, traits, { daysSinceLastTalk: 0, history }),
      );
      closings.push(reply.content.split(/(?<=[.!?])\s+/).pop() ?? '');
      history.push(
        { role: 'user', content: message },
        { role: 'assistant', content: reply.content },
      );
    }
    for (let i = 1; i < closings.length; i++) expect(closings[i]).not.toBe(closings[i - 1]);
    // The catchphrase still closes some replies, and the phrasing varies across the talk.
    expect(closings.filter((c) => c === 'Tell me more?').length).toBeGreaterThan(0);
    expect(new Set(closings).size).toBeGreaterThan(2);
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
