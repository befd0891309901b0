import { decodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/logger.js';
import { recallForTurn } from '../src/memory/recall.js';
import {
  insertMemory,
  type LayerScope,
  searchLayer,
  searchLayerHybrid,
  searchLayerLexical,
} from '../src/memory/store.js';
import { EMBEDDING_DIMENSIONS } from '../src/providers/embeddings/types.js';
import { type OpenRouterFake, startOpenRouterFake } from './fakes/openrouter-fake.js';
import { startVoyageFake, type VoyageFake } from './fakes/voyage-fake.js';
import { createTestContext, dataOf, type TestContext } from './helpers/app.js';
import { personaIds, send, startChat } from './helpers/chat.js';
import { fakeProviderEnv } from './helpers/providers.js';

/**
 * Issue 11: recall ranks by meaning and words. The lexical side is BM25 in SQL over each
 * memory's document (its content plus its date in words); every chat turn recalls both layers
 * with the fused ranking, for the conversation (the user's message and the persona's reply it
 * answers), embedded once.
 */

/** Every row at the same point: the meaning side cannot tell them apart, words must. */
const FLAT = Array.from({ length: EMBEDDING_DIMENSIONS }, (_, i) => (i === 0 ? 1 : 0));
const MODEL = 'test-flat';

describe('lexical ranking (BM25 in SQL)', () => {
  let t: TestContext;
  beforeAll(async () => {
    t = await createTestContext();
  });
  afterAll(() => t?.close());

  async function user(): Promise<LayerScope> {
    const u = await t.newUser();
    dataOf(await t.gql('{ viewer { id } }', {}, u.token));
    return { userId: u.id, instanceId: null };
  }

  async function put(scope: LayerScope, content: string, createdAt?: string): Promise<string> {
    const id = await insertMemory(t.services.prisma, {
      scope,
      content,
      category: 'OTHER',
      confidence: null,
      embedding: FLAT,
      embeddingModel: MODEL,
      sourceMessageId: null,
      sourceSessionId: null,
      createdAt: createdAt ? new Date(createdAt) : undefined,
    });
    if (!id) throw new Error(`duplicate: ${content}`);
    return id;
  }

  const lexical = async (scope: LayerScope, text: string, k = 10) =>
    (await searchLayerLexical(t.services.prisma, scope, { text, model: MODEL, k })).map(
      (h) => h.memory.content,
    );

  it('IDF: a rare word outranks a common one', async () => {
    const scope = await user();
    const common = Array.from({ length: 12 }, (_, i) => `User drank coffee at cafe number ${i}`);
    for (const c of common) await put(scope, c);
    const rare = 'User adopted a cat named Quetzal';
    await put(scope, rare);
    // One query word each: "coffee" is in 12 of 13 memories, "quetzal" in one.
    const ranked = await lexical(scope, 'coffee or Quetzal?', 20);
    expect(ranked[0]).toBe(rare);
    expect(new Set(ranked.slice(1))).toEqual(new Set(common));
    // Scores follow: the rare match scores far above any common one.
    const hits = await searchLayerLexical(t.services.prisma, scope, {
      text: 'coffee Quetzal',
      model: MODEL,
      k: 2,
    });
    expect(hits[0]?.score).toBeGreaterThan(3 * (hits[1]?.score ?? 0));
  });

  it('any word of the query may match, not all of them', async () => {
    const scope = await user();
    await put(scope, 'User visited Reykjavik with her brother');
    await put(scope, 'User plays chess on Tuesdays');
    // Most of these words are in no memory ("trip", "tell", "year"…): websearch_to_tsquery
    // would have matched nothing.
    expect(
      await lexical(scope, 'did I ever tell you about my trip to Reykjavik last year?'),
    ).toEqual(['User visited Reykjavik with her brother']);
    expect(await lexical(scope, 'who is on the chess team?')).toEqual([
      'User plays chess on Tuesdays',
    ]);
    // Only stop words: nothing matches, nothing fails.
    expect(await lexical(scope, 'what is it?')).toEqual([]);
  });

  it('a Portuguese memory is found by a Portuguese question', async () => {
    const scope = await user();
    const entrevista = 'O usuário tem uma entrevista de emprego na padaria do bairro';
    await put(scope, entrevista);
    await put(scope, 'O usuário gosta de café com leite de manhã');
    await put(scope, 'User listens to jazz while cooking');
    await put(scope, 'A irmã do usuário, Ana, é médica em Coimbra');
    expect((await lexical(scope, 'Como foi a entrevista de emprego?'))[0]).toBe(entrevista);
    expect((await lexical(scope, 'E as entrevistas na padaria?'))[0]).toBe(entrevista);
    expect((await lexical(scope, 'O que a minha irmã faz?'))[0]).toBe(
      'A irmã do usuário, Ana, é médica em Coimbra',
    );
  });

  it('finds a memory by its date in words: month, year, weekday, season', async () => {
    const scope = await user();
    // 2024-05-13 was a Monday; 2024-07-20 a Saturday; 2024-11-02 a Saturday.
    const may = await put(scope, 'User adopted a puppy named Biscuit', '2024-05-13T10:00:00Z');
    await put(scope, 'User went sailing with Tomás', '2024-07-20T10:00:00Z');
    await put(scope, 'User started pottery classes', '2023-11-02T10:00:00Z');
    expect(await lexical(scope, 'what did I tell you in May?')).toEqual([
      'User adopted a puppy named Biscuit',
    ]);
    expect(await lexical(scope, 'what did we talk about last summer?')).toEqual([
      'User went sailing with Tomás',
    ]);
    expect(await lexical(scope, 'anything from 2023?')).toEqual(['User started pottery classes']);
    expect((await lexical(scope, 'that Monday'))[0]).toBe('User adopted a puppy named Biscuit');
    // The document follows the row: a corrected date moves the memory with it.
    await t.services.prisma.$executeRaw`
      UPDATE memories SET created_at = '2024-12-25T10:00:00Z' WHERE id = ${may}::uuid`;
    expect(await lexical(scope, 'what did I tell you in May?')).toEqual([]);
    expect(await lexical(scope, 'in December, in winter')).toEqual([
      'User adopted a puppy named Biscuit',
    ]);
  });

  it('query text is only words: quotes, operators and backslashes are searched as text', async () => {
    const scope = await user();
    await put(scope, "User's friend O'Brien plays the bass");
    for (const text of [
      "O'Brien",
      "'",
      '\\',
      'a & b | !c <-> d:* (e',
      "'' OR 1=1; --",
      'x\u0000y',
      '   ',
    ]) {
      await expect(lexical(scope, text), text).resolves.toBeInstanceOf(Array);
    }
    expect(await lexical(scope, "O'Brien?")).toEqual(["User's friend O'Brien plays the bass"]);
  });
});

describe('fused recall in the chat turn', () => {
  let t: TestContext;
  beforeAll(async () => {
    t = await createTestContext();
  });
  afterAll(() => t?.close());

  const CORPUS = [
    'User works as a night-shift nurse at a hospital in Lisbon',
    'User loves hiking in the mountains on weekends',
    "User's pen pal Xochitl sends postcards from Oaxaca",
    'User is allergic to cats',
    'User prefers green tea over coffee',
    "User's sister Ana is a doctor in Coimbra",
    'User plays the cello in a community orchestra',
    'User adopted a rescue dog named Biscuit',
    "User's best friend Tomás moved to Berlin",
    'User bakes sourdough bread every Sunday',
    "User's boyfriend Jonas is a chef",
    'User visited Mexico City and loved the museums',
  ];

  it('both layers are recalled by meaning and words fused; the turn shows the name first', async () => {
    const u = await t.newUser();
    const personas = await personaIds(t, u.token);
    const chat = await startChat(t, u.token, personas.mira as string);
    const instanceId = decodeGlobalID(chat.instanceId).id;
    const vectors = await t.services.embedder.embed(
      [...CORPUS, 'User and Mira call each other Xochitl twins'],
      'document',
    );
    for (const [i, content] of CORPUS.entries()) {
      await insertMemory(t.services.prisma, {
        scope: { userId: u.id, instanceId: null },
        content,
        category: 'OTHER',
        confidence: null,
        embedding: vectors[i] as number[],
        embeddingModel: t.services.embedder.model,
        sourceMessageId: null,
        sourceSessionId: null,
      });
    }
    await insertMemory(t.services.prisma, {
      scope: { userId: u.id, instanceId },
      content: 'User and Mira call each other Xochitl twins',
      category: 'OTHER',
      confidence: null,
      embedding: vectors[CORPUS.length] as number[],
      embeddingModel: t.services.embedder.model,
      sourceMessageId: null,
      sourceSessionId: null,
    });

    const question = 'who is Xochitl?';
    // Meaning alone does not put her first (to the embedder "Xochitl" is just some name).
    const [qv] = await t.services.embedder.embed([question], 'query');
    const byMeaning = await searchLayer(
      t.services.prisma,
      { userId: u.id, instanceId: null },
      { embedding: qv as number[], model: t.services.embedder.model, k: 3 },
    );
    expect(byMeaning[0]?.memory.content).not.toBe(
      "User's pen pal Xochitl sends postcards from Oaxaca",
    );

    const recalled = await recallForTurn(
      {
        db: t.services.prisma,
        embedder: t.services.embedder,
        logger: silentLogger,
        metrics: t.services.metrics,
      },
      { userId: u.id, instanceId },
      { message: question },
      { profileK: 3, relationshipK: 8, minScore: 0.1, fusion: t.services.config.fusion },
    );
    expect(recalled.error).toBeUndefined();
    expect(recalled.profile[0]?.memory.content).toBe(
      "User's pen pal Xochitl sends postcards from Oaxaca",
    );
    expect(recalled.relationship.map((m) => m.memory.content)).toEqual([
      'User and Mira call each other Xochitl twins',
    ]);
    // The very same ranking as memory search (one function, the same settings).
    const searched = await searchLayerHybrid(
      t.services.prisma,
      { userId: u.id, instanceId: null },
      {
        embedding: qv as number[],
        model: t.services.embedder.model,
        text: question,
        k: 3,
        minScore: 0.1,
      },
      t.services.config.fusion,
    );
    expect(searched.map((m) => [m.memory.id, m.score])).toEqual(
      recalled.profile.map((m) => [m.memory.id, m.score]),
    );

    // Through GraphQL: the turn's recalled memories are those.
    const turn = await send(t, u.token, chat.sessionId, question);
    expect(turn.recalled.profile[0]?.memory.content).toBe(
      "User's pen pal Xochitl sends postcards from Oaxaca",
    );
    expect(turn.recalled.relationship.map((m) => m.memory.content)).toEqual([
      'User and Mira call each other Xochitl twins',
    ]);
  });

  it('a word match still counts when the meaning side falls below RECALL_MIN_SCORE', async () => {
    const u = await t.newUser();
    dataOf(await t.gql('{ viewer { id } }', {}, u.token));
    const scope = { userId: u.id, instanceId: null };
    // Orthogonal to the query: cosine 0, under any positive threshold.
    const away = Array.from({ length: EMBEDDING_DIMENSIONS }, (_, i) => (i === 1 ? 1 : 0));
    await insertMemory(t.services.prisma, {
      scope,
      content: 'User keeps bees on the roof',
      category: 'OTHER',
      confidence: null,
      embedding: away,
      embeddingModel: MODEL,
      sourceMessageId: null,
      sourceSessionId: null,
    });
    const query = { embedding: FLAT, model: MODEL, k: 3, minScore: 0.1 };
    // Meaning alone recalls nothing at this threshold.
    expect(await searchLayer(t.services.prisma, scope, query)).toEqual([]);
    const hybrid = await searchLayerHybrid(t.services.prisma, scope, { ...query, text: 'bees' });
    expect(hybrid.map((h) => h.memory.content)).toEqual(['User keeps bees on the roof']);
    expect(await searchLayerHybrid(t.services.prisma, scope, { ...query, text: 'wasps' })).toEqual(
      [],
    );
  });
});

describe('the recall query is the conversation, embedded once', () => {
  let t: TestContext;
  let voyage: VoyageFake;
  let openrouter: OpenRouterFake;
  beforeAll(async () => {
    voyage = await startVoyageFake();
    openrouter = await startOpenRouterFake();
    t = await createTestContext({ env: fakeProviderEnv({ voyage, openrouter }) });
  });
  afterAll(async () => {
    await t?.close();
    await voyage?.close();
    await openrouter?.close();
  });

  it('"how did it go?" after the reply about an interview recalls the interview', async () => {
    const u = await t.newUser();
    const personas = await personaIds(t, u.token);
    const memories = [
      'User has a job interview at the Lisbon bakery on Friday',
      "User's sister Ana is a doctor in Coimbra",
      'User listens to jazz while cooking',
      'User adopted a rescue dog named Biscuit',
    ];
    const vectors = await t.services.embedder.embed(memories, 'document');
    for (const [i, content] of memories.entries()) {
      await insertMemory(t.services.prisma, {
        scope: { userId: u.id, instanceId: null },
        content,
        category: 'EVENT',
        confidence: null,
        embedding: vectors[i] as number[],
        embeddingModel: t.services.embedder.model,
        sourceMessageId: null,
        sourceSessionId: null,
      });
    }
    const interview = memories[0];

    // Alone, the question shares nothing with any memory: nothing is recalled.
    const other = await startChat(t, u.token, personas.rook as string);
    const alone = await send(t, u.token, other.sessionId, 'How did it go?');
    expect(alone.recalled.profile.map((m) => m.memory.content)).not.toContain(interview);

    const chat = await startChat(t, u.token, personas.mira as string);
    openrouter.setResponder(
      () => 'Good luck with the bakery interview on Friday! Tell me everything.',
    );
    await send(t, u.token, chat.sessionId, 'Wish me luck for tomorrow');
    openrouter.setResponder(() => 'I am so glad to hear from you.');

    const before = voyage.requests.length;
    const turn = await send(t, u.token, chat.sessionId, 'How did it go?');
    expect(turn.recalled.profile[0]?.memory.content).toBe(interview);
    // One embedding call for the turn, of one text: the reply it answers, then the message.
    const calls = voyage.requests.slice(before).map((r) => r.body?.input);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toEqual([
      'Good luck with the bakery interview on Friday! Tell me everything.\nHow did it go?',
    ]);
  });
});
