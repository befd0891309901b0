import { describe, expect, it } from 'vitest';
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
  [
    'I really love my dog and my cat',
    [['User really loves their dog and their cat', 'PREFERENCE', P]],
  ],
  ["I'm so stressed about work", [['User is so stressed about work', 'EMOTION', P]]],
  [
    'I have an interview next week; I feel nervous about it.',
    [
      ['User has an interview next week', 'EVENT', P],
      ['User feels nervous about it', 'EMOTION', P],
    ],
  ],
  ['Yesterday I visited my grandma.', [['Yesterday User visited their grandma', 'EVENT', P]]],
  [
    'Me and my brother play chess every Sunday',
    [['User and their brother play chess every Sunday', 'RELATION', P]],
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
