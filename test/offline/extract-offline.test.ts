import { describe, expect, it } from 'vitest';
import { metrics, runFixture } from '../../bench/lib/extraction-score.js';
import { OfflineExtractor } from '../../src/memory/extract-offline.js';
import type {
  ExistingMemory,
  ExtractionInput,
  MemoryCategory,
  MemoryLayer,
} from '../../src/memory/types.js';

const extractor = new OfflineExtractor();

function input(userMessage: string, existing: ExistingMemory[] = []): ExtractionInput {
  return {
    userMessage,
    // Full of first-person statements: none of them may ever be extracted.
    reply: "I'm Mia and I love pizza. My brother is a pilot.",
    priorMessages: [],
    messageTime: new Date('2025-01-01T10:00:00Z'),
    personaName: 'Mia',
    existing,
  };
}

type Expected = readonly [content: string, category: MemoryCategory, layer: MemoryLayer];
const P = 'PROFILE';
const R = 'RELATIONSHIP';

const CASES: ReadonlyArray<readonly [message: string, expected: Expected[]]> = [
  [
    "I'm a nurse from Lisbon and I love hiking",
    [
      ['User is a nurse from Lisbon', 'FACT', P],
      ['User loves hiking', 'PREFERENCE', P],
    ],
  ],
  ['Hi Mia! I work at a hospital. What do you do?', [['User works at a hospital', 'FACT', P]]],
  ['I live in Porto.', [['User lives in Porto', 'FACT', P]]],
  ['My friend is a nurse.', [["User's friend is a nurse", 'RELATION', P]]],
  [
    'I have two kids and a dog named Rex',
    [['User has two kids and a dog named Rex', 'RELATION', P]],
  ],
  ['My favorite color is blue', [["User's favorite color is blue", 'PREFERENCE', P]]],
  [
    'I hate cilantro, but I enjoy spicy food.',
    [
      ['User hates cilantro', 'PREFERENCE', P],
      ['User enjoys spicy food', 'PREFERENCE', P],
    ],
  ],
  ["I don't like cats", [["User doesn't like cats", 'PREFERENCE', P]]],
  ['I really love my dog and my cat', [["User loves User's dog and User's cat", 'PREFERENCE', P]]],
  ["I'm so stressed about work", [['User is stressed about work', 'EMOTION', P]]],
  [
    'I have an interview next week; I feel nervous about it.',
    [
      ['User has an interview in the week of 6 January 2025', 'EVENT', P],
      ['User feels nervous about it', 'EMOTION', P],
    ],
  ],
  [
    'Yesterday I visited my grandma.',
    [["User visited User's grandma on 31 December 2024", 'EVENT', P]],
  ],
  [
    'Me and my brother play chess every Sunday',
    [["User and User's brother play chess every Sunday", 'RELATION', P]],
  ],
  [
    'I watch anime and I study biology',
    [
      ['User watches anime', 'FACT', P],
      ['User studies biology', 'FACT', P],
    ],
  ],
  [
    "I've been learning Japanese for two years",
    [['User has been learning Japanese for two years', 'FACT', P]],
  ],
  [
    'we joked about your terrible puns',
    [["User and Mia joked about Mia's terrible puns", 'EVENT', R]],
  ],
  [
    "I promised you I'd tell you how the interview went",
    [['User promised Mia User would tell Mia how the interview went', 'EVENT', R]],
  ],
  ["you're funny", [['Mia is funny', 'FACT', R]]],
  ['You make me laugh every day.', [['Mia makes User laugh every day', 'FACT', R]]],
  ['I think you are the best', [['User thinks Mia is the best', 'FACT', R]]],
  // Negatives: questions, hypotheticals, filler, greetings, statements about nobody in the chat.
  ['What is my job?', []],
  ['Do you remember my sister', []],
  ['If I had money I would buy a boat.', []],
  ['I wonder what the weather will be.', []],
  ["Hey Mia! I'm fine, thanks", []],
  ['Thank you so much!', []],
  ['ok lol', []],
  ['The weather is nice today.', []],
  ['I ran.', []],
];

describe('OfflineExtractor', () => {
  it('labels itself offline', () => {
    expect(extractor.provider).toBe('offline');
  });

  it.each(CASES)('%s', async (message, expected) => {
    const candidates = await extractor.extract(input(message));
    expect(candidates.map((c) => [c.content, c.category, c.layer])).toEqual(expected);
    for (const candidate of candidates) {
      expect(candidate.confidence).toBeGreaterThanOrEqual(0.6);
      expect(candidate.confidence).toBeLessThanOrEqual(0.8);
    }
  });

  it('skips what is already known, ignoring case and punctuation', async () => {
    const existing: ExistingMemory[] = [
      { id: 'm1', content: 'user is a nurse from lisbon.', layer: 'PROFILE' },
    ];
    const candidates = await extractor.extract(
      input("I'm a nurse from Lisbon and I love hiking. I'm a nurse from Lisbon!", existing),
    );
    expect(candidates.map((c) => c.content)).toEqual(['User loves hiking']);
  });

  it('never reads the reply', async () => {
    expect(await extractor.extract(input('Tell me a story'))).toEqual([]);
  });

  it('hedges lower and caps length', async () => {
    const [hedged] = await extractor.extract(input('I think I might move to Berlin'));
    expect(hedged?.confidence).toBe(0.7);
    const [long] = await extractor.extract(input(`I love ${'very '.repeat(200)}long walks`));
    expect(long?.content.length).toBeLessThanOrEqual(500);
  });

  it('is deterministic', async () => {
    const message = 'I love jazz and I live in Lisbon. We talked about your cat yesterday.';
    expect(await extractor.extract(input(message))).toEqual(
      await extractor.extract(input(message)),
    );
  });
});

describe('OfflineExtractor: atomic, clean, dated memories (issue 17)', () => {
  /** Thursday 3 December 2026, 10:30 in Lisbon (UTC+00:00 in winter). */
  const said = (userMessage: string, existing: ExistingMemory[] = []): ExtractionInput => ({
    userMessage,
    reply: "Lovely! I'm Mira and I live in Porto too.",
    priorMessages: [],
    messageTime: new Date('2026-12-03T10:30:00Z'),
    timeZone: 'Europe/Lisbon',
    personaName: 'Mira',
    existing,
  });
  const contents = async (input: ExtractionInput) =>
    (await extractor.extract(input)).map((c) => c.content);

  it('splits a name and a job into two memories', async () => {
    expect(await contents(said("Hi! I'm Dana, I work as a vet in Porto."))).toEqual([
      "User's name is Dana",
      'User works as a vet in Porto',
    ]);
  });

  it('splits a wedding and a worry, resolves "next month" and keeps "my speech" the user\'s', async () => {
    const out = await extractor.extract(
      said("My sister Lucia is getting married next month, I'm so nervous about my speech."),
    );
    expect(out.map((c) => c.content)).toEqual([
      "User's sister Lucia is getting married in January 2027",
      "User is nervous about User's speech",
    ]);
    // A month is not a day: no occurredAt, so no follow-up is guessed for a day never said.
    expect(out[0]?.occurredAt).toBeUndefined();
  });

  it('drops fillers', async () => {
    expect(await contents(said('I hate cilantro by the way.'))).toEqual(['User hates cilantro']);
    expect(await contents(said('Honestly, I actually love my job, you know.'))).toEqual([
      "User loves User's job",
    ]);
    expect(await contents(said('I have an exam tomorrow, honestly I feel nervous.'))).toEqual([
      'User has an exam on 4 December 2026',
      'User feels nervous',
    ]);
  });

  it('resolves dates in the user zone: "tomorrow" at 00:30 Friday in Kiritimati is Saturday', async () => {
    const out = await extractor.extract({
      ...said('I have a dentist appointment tomorrow.'),
      timeZone: 'Pacific/Kiritimati',
    });
    expect(out.map((c) => c.content)).toEqual([
      'User has a dentist appointment on 5 December 2026',
    ]);
    expect(out[0]?.occurredAt?.toISOString()).toBe('2026-12-04T10:00:00.000Z');
  });

  it('a move states the new home, superseding the stored one; the event keeps its date', async () => {
    const home: ExistingMemory = { id: 'home-1', content: 'User lives in Porto', layer: 'PROFILE' };
    const job: ExistingMemory = { id: 'job-1', content: 'User works as a vet', layer: 'PROFILE' };
    const out = await extractor.extract(said('Actually I moved to Lisbon last week.', [job, home]));
    expect(out).toEqual([
      expect.objectContaining({
        content: 'User moved to Lisbon in the week of 23 November 2026',
        category: 'EVENT',
        occurredAt: new Date('2026-11-23T00:00:00Z'),
      }),
      expect.objectContaining({ content: 'User lives in Lisbon', supersedes: 'home-1' }),
    ]);
    expect(out[0]?.supersedes).toBeUndefined();
  });

  it('a job change supersedes the stored job, and only with a change in the words', async () => {
    const job: ExistingMemory = {
      id: 'job-1',
      content: 'User works at Microsoft',
      layer: 'PROFILE',
    };
    const changed = await extractor.extract(
      said('I started a new job at Google yesterday.', [job]),
    );
    expect(changed).toContainEqual(
      expect.objectContaining({ content: 'User works at Google', supersedes: 'job-1' }),
    );
    // "I work at a bank" may be the same job told differently: no supersede.
    const plain = await extractor.extract(said('I work at a bank.', [job]));
    expect(plain.map((c) => [c.content, c.supersedes])).toEqual([
      ['User works at a bank', undefined],
    ]);
  });

  it.each([
    'Hey, how are you?',
    'Where do I live?',
    'If I won the lottery I would buy a boat.',
    "I'm basically a professional napper lol",
    '*draws my sword* I shall protect you, fair Mira!',
    "Let's pretend I'm a pirate captain.",
    'My friend thinks Lisbon is overrated.',
    'Maybe one day I will be rich.',
  ])('writes nothing for %s', async (message) => {
    expect(await contents(said(message))).toEqual([]);
  });
});

describe('OfflineExtractor on the labelled set', () => {
  it('keeps F1 >= 0.80 and junk <= 5% on test/fixtures/offline-extraction.jsonl', async () => {
    const { overall } = await runFixture();
    const m = metrics(overall);
    expect(overall.messages).toBeGreaterThanOrEqual(150);
    expect(m.f1).toBeGreaterThanOrEqual(0.8);
    expect(m.junkRate).toBeLessThanOrEqual(0.05);
    expect(overall.supersedesRight).toBe(overall.supersedesExpected);
  });
});
