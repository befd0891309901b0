import { decodeGlobalID, encodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_FUSION } from '../src/memory/fusion.js';
import {
  insertMemory,
  type LayerScope,
  searchLayerHybrid,
  supersedeMemory,
} from '../src/memory/store.js';
import type { MemoryCategory } from '../src/memory/types.js';
import { EMBEDDING_DIMENSIONS } from '../src/providers/embeddings/types.js';
import { codesOf, createTestContext, dataOf, type TestContext } from './helpers/app.js';
import { personaIds, startChat } from './helpers/chat.js';
import { LONG_TEST_TIMEOUT_MS } from './helpers/timeouts.js';

/**
 * Issue 4: memory search fuses meaning (pgvector) with words (Postgres full-text search), and
 * both layers' queries take time range, superseded and search-mode arguments. Memories are
 * stored directly with the real local embedder (the worker's extraction is not under test), and
 * every assertion goes through GraphQL.
 */

let t: TestContext;
beforeAll(async () => {
  t = await createTestContext();
});
afterAll(() => t?.close());

const XOCHITL = "User's pen pal Xochitl sends postcards from Oaxaca";

/** 30 memories of one user, as the extractor writes them (English, third person). */
const CORPUS: readonly [string, MemoryCategory][] = [
  ['User works as a night-shift nurse at a hospital in Lisbon', 'FACT'],
  ['User loves hiking in the mountains on weekends', 'PREFERENCE'],
  [XOCHITL, 'RELATION'],
  ['User is allergic to cats', 'FACT'],
  ['User prefers green tea over coffee', 'PREFERENCE'],
  ['User ran a half marathon in Porto on 2024-04-07', 'EVENT'],
  ["User's sister Ana is a doctor in Coimbra", 'RELATION'],
  ['User feels anxious before job interviews', 'EMOTION'],
  ['User plays the cello in a community orchestra', 'FACT'],
  ['User is learning Japanese for a trip to Kyoto', 'EVENT'],
  ["User's neighbour Mr. Okafor waters her plants", 'RELATION'],
  ["User's best friend Tomás moved to Berlin", 'RELATION'],
  ['User adopted a rescue dog named Biscuit', 'FACT'],
  ['User bakes sourdough bread every Sunday', 'PREFERENCE'],
  ['User felt proud after finishing a pottery course', 'EMOTION'],
  ['User grew up in a small village near the sea', 'FACT'],
  ["User's boyfriend Jonas is a chef", 'RELATION'],
  ['User is saving money to buy an apartment', 'OTHER'],
  ["User's grandmother taught her to knit", 'RELATION'],
  ['User volunteers at a food bank on Thursdays', 'FACT'],
  ["User's coworker Priya often covers her shifts", 'RELATION'],
  ['User broke her wrist skiing in 2019', 'EVENT'],
  ['User gets lonely on long winter evenings', 'EMOTION'],
  ['User studies part-time for a nursing master degree', 'FACT'],
  ['User listens to jazz while cooking', 'PREFERENCE'],
  ["User's father is a retired fisherman", 'RELATION'],
  ['User visited Mexico City and loved the museums', 'EVENT'],
  ['User wants to learn to surf next summer', 'OTHER'],
  ['User drinks too much coffee during night shifts', 'FACT'],
  ['User is nervous about speaking in public', 'EMOTION'],
];

async function newUser(options: { admin?: boolean } = {}) {
  const user = await t.newUser(options);
  dataOf(await t.gql('{ viewer { id } }', {}, user.token)); // provisions the user row
  return user;
}

/** Stores memories through the project's own insert, embedded like the worker embeds them. */
async function store(
  scope: LayerScope,
  items: readonly (readonly [string, MemoryCategory])[],
  model = t.services.embedder.model,
): Promise<string[]> {
  const vectors = await t.services.embedder.embed(
    items.map(([content]) => content),
    'document',
  );
  const ids: string[] = [];
  for (const [i, [content, category]] of items.entries()) {
    const id = await insertMemory(t.services.prisma, {
      scope,
      content,
      category,
      confidence: null,
      embedding: vectors[i] ?? [],
      embeddingModel: model,
      sourceMessageId: null,
      sourceSessionId: null,
    });
    if (!id) throw new Error(`duplicate memory: ${content}`);
    ids.push(id);
  }
  return ids;
}

async function setCreatedAt(id: string, iso: string): Promise<void> {
  await t.services.prisma.memory.update({ where: { id }, data: { createdAt: new Date(iso) } });
}

const ARGS = /* GraphQL */ `$search: String, $searchMode: MemorySearchMode, $first: Int,
  $after: String, $category: MemoryCategory, $createdAfter: DateTime, $createdBefore: DateTime,
  $includeSuperseded: Boolean`;
const PASS = /* GraphQL */ `search: $search, searchMode: $searchMode, first: $first,
  after: $after, category: $category, createdAfter: $createdAfter,
  createdBefore: $createdBefore, includeSuperseded: $includeSuperseded`;
const SELECTION = /* GraphQL */ `
  edges { cursor score node { id content category superseded createdAt } }
  pageInfo { hasNextPage endCursor }`;
const PROFILE = `query Profile($userId: ID, ${ARGS}) {
  memories: profileMemories(userId: $userId, ${PASS}) { ${SELECTION} } }`;
const RELATIONSHIP = `query Relationship($instanceId: ID!, ${ARGS}) {
  memories: relationshipMemories(instanceId: $instanceId, ${PASS}) { ${SELECTION} } }`;

interface Edge {
  cursor: string;
  score: number | null;
  node: { id: string; content: string; category: string; superseded: boolean; createdAt: string };
}
interface Page {
  memories: { edges: Edge[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } };
}

async function profile(token: string, variables: Record<string, unknown>) {
  return dataOf(await t.gql<Page>(PROFILE, { first: 100, ...variables }, token)).memories;
}

const contents = (page: { edges: Edge[] }) => page.edges.map((e) => e.node.content);
const rankOf = (page: { edges: Edge[] }, content: string) => contents(page).indexOf(content) + 1;

describe('hybrid search: meaning fused with words', () => {
  let owner: { id: string; token: string };
  let ids: string[];
  beforeAll(async () => {
    owner = await newUser();
    ids = await store({ userId: owner.id, instanceId: null }, CORPUS);
  });

  it('search finds an exact rare word that pure vector search ranks low', async () => {
    // A bare name, and the way a person asks. Meaning alone puts other people's memories
    // first (to the embedder "Xochitl" is just some name); the word match puts hers on top.
    for (const search of ['Xochitl', 'who is Xochitl?']) {
      const hybrid = await profile(owner.token, { search, searchMode: 'HYBRID' });
      const vector = await profile(owner.token, { search, searchMode: 'VECTOR' });
      expect(rankOf(hybrid, XOCHITL), search).toBe(1);
      expect(rankOf(vector, XOCHITL), search).toBeGreaterThan(1);
      // HYBRID is the default.
      expect(contents(await profile(owner.token, { search }))).toEqual(contents(hybrid));
    }
    // The question's stop words ("who", "is") do not have to appear in the memory.
    const question = await profile(owner.token, {
      search: 'who is Xochitl?',
      searchMode: 'VECTOR',
    });
    expect(rankOf(question, XOCHITL)).toBeGreaterThanOrEqual(3);
  });

  it('scores: fused and scaled to (0, 1] in HYBRID, cosine similarity in VECTOR', async () => {
    const hybrid = await profile(owner.token, { search: 'Xochitl' });
    const scores = hybrid.edges.map((e) => e.score ?? Number.NaN);
    expect(scores.every((s) => s > 0 && s <= 1)).toBe(true);
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
    // Found by both sides (near the top by meaning, first by words): above what one side alone
    // can give (0.5); every other memory shares no word with the query.
    expect(scores[0]).toBeGreaterThan(0.5);
    expect(scores.slice(1).every((s) => s <= 0.5)).toBe(true);
    // Meaning contributes up to RECALL_VECTOR_DEPTH rows, words one: 30 memories, all found by meaning.
    expect(hybrid.edges).toHaveLength(CORPUS.length);

    const vector = await profile(owner.token, { search: 'Xochitl', searchMode: 'VECTOR' });
    const cosines = vector.edges.map((e) => e.score ?? Number.NaN);
    expect(cosines.every((s) => s >= -1 && s <= 1)).toBe(true);
    expect(cosines).toEqual([...cosines].sort((a, b) => b - a));
  });

  it('filters by category and time range on both sides of the fusion', async () => {
    // Only the word side would find Xochitl's memory first: if a filter were missing there,
    // it would show up below.
    const facts = await profile(owner.token, { search: 'Xochitl', category: 'FACT' });
    expect(facts.edges.length).toBeGreaterThan(0);
    expect(facts.edges.every((e) => e.node.category === 'FACT')).toBe(true);
    expect(contents(facts)).not.toContain(XOCHITL);

    const xochitlId = ids[CORPUS.findIndex(([c]) => c === XOCHITL)] as string;
    const marathonId = ids[5] as string;
    await setCreatedAt(xochitlId, '2024-01-10T12:00:00.000Z');
    await setCreatedAt(marathonId, '2024-04-07T18:00:00.000Z');
    const window = {
      createdAfter: '2024-01-10T12:00:00.000Z',
      createdBefore: '2024-04-07T18:00:00.000Z',
    };
    for (const searchMode of ['HYBRID', 'VECTOR']) {
      // [after, before): the lower bound is inclusive, the upper exclusive.
      const inWindow = await profile(owner.token, { search: 'Xochitl', searchMode, ...window });
      expect(contents(inWindow), searchMode).toEqual([XOCHITL]);
      const before = await profile(owner.token, {
        search: 'marathon Xochitl',
        searchMode,
        createdBefore: '2024-06-01T00:00:00.000Z',
      });
      expect(new Set(contents(before)), searchMode).toEqual(new Set([XOCHITL, CORPUS[5]?.[0]]));
      const after = await profile(owner.token, {
        search: 'Xochitl',
        searchMode,
        createdAfter: '2024-06-01T00:00:00.000Z',
      });
      expect(after.edges).toHaveLength(CORPUS.length - 2);
      expect(contents(after), searchMode).not.toContain(XOCHITL);
    }
    // Listing takes the same window.
    const listed = await profile(owner.token, window);
    expect(contents(listed)).toEqual([XOCHITL]);

    const empty = await t.gql(
      PROFILE,
      { createdAfter: window.createdBefore, createdBefore: window.createdAfter },
      owner.token,
    );
    expect(codesOf(empty)).toEqual(['BAD_USER_INPUT']);
    const same = await t.gql(
      PROFILE,
      { createdAfter: window.createdAfter, createdBefore: window.createdAfter },
      owner.token,
    );
    expect(codesOf(same)).toEqual(['BAD_USER_INPUT']);
  });

  it('finds superseded memories only with includeSuperseded', async () => {
    const user = await newUser();
    const scope = { userId: user.id, instanceId: null };
    const [oldId, movedId] = [
      ...(await store(scope, [['User lives in Oaxaca with her cat Quetzal', 'FACT']])),
      ...(await store(scope, [['User moved to Mérida with her cat Quetzal', 'FACT']])),
    ] as [string, string];
    await supersedeMemory(t.services.prisma, scope, oldId, movedId);
    const [old, moved] = [encodeGlobalID('Memory', oldId), encodeGlobalID('Memory', movedId)];

    for (const searchMode of ['HYBRID', 'VECTOR']) {
      const live = await profile(user.token, { search: 'Oaxaca', searchMode });
      expect(
        live.edges.map((e) => e.node.id),
        searchMode,
      ).toEqual([moved]);
      const all = await profile(user.token, {
        search: 'Oaxaca',
        searchMode,
        includeSuperseded: true,
      });
      expect(all.edges[0]?.node, searchMode).toMatchObject({ id: old, superseded: true });
      expect(all.edges).toHaveLength(2);
    }
    expect((await profile(user.token, {})).edges.map((e) => e.node.id)).toEqual([moved]);
    const history = await profile(user.token, { includeSuperseded: true });
    expect(new Set(history.edges.map((e) => e.node.id))).toEqual(new Set([old, moved]));
  });

  it('never returns a memory embedded by another model, not even by its words', async () => {
    const user = await newUser();
    const scope = { userId: user.id, instanceId: null };
    await store(scope, [['User plays the theremin on Fridays', 'PREFERENCE']]);
    await store(scope, [['User bought a theremin in Vienna', 'EVENT']], 'some-retired-model');
    for (const searchMode of ['HYBRID', 'VECTOR']) {
      const page = await profile(user.token, { search: 'theremin', searchMode });
      expect(contents(page), searchMode).toEqual(['User plays the theremin on Fridays']);
    }
    // A listing is not a vector search: it shows every memory.
    expect((await profile(user.token, {})).edges).toHaveLength(2);
  });

  it('keeps the layers apart: a relationship search never returns profile memories', async () => {
    const personas = await personaIds(t, owner.token);
    const { instanceId } = await startChat(t, owner.token, personas.mira as string);
    const rel = 'User and Mira invented a dance called the Xochitl shuffle';
    await store({ userId: owner.id, instanceId: decodeGlobalID(instanceId).id }, [[rel, 'OTHER']]);
    for (const searchMode of ['HYBRID', 'VECTOR']) {
      const res = await t.gql<Page>(
        RELATIONSHIP,
        { instanceId, search: 'Xochitl', searchMode, first: 10 },
        owner.token,
      );
      expect(contents(dataOf(res).memories), searchMode).toEqual([rel]);
    }
    expect(rankOf(await profile(owner.token, { search: 'Xochitl' }), rel)).toBe(0);
  });
});

describe('fusion when meaning misses the word entirely', () => {
  /** A unit vector along `axis`, tilted by `tilt` towards axis 2 (so rows differ in distance). */
  const axis = (n: number, tilt = 0) =>
    Array.from({ length: EMBEDDING_DIMENSIONS }, (_, i) =>
      i === n ? Math.cos(tilt) : i === 2 ? Math.sin(tilt) : 0,
    );

  it('ranks word matches first even when none is among the nearest by meaning', async () => {
    // Past a few dozen memories a rare name can fall out of the meaning side's candidates
    // altogether (measured: "who is Xochitl?" over 1,000 memories with the local embedder).
    // Vectors are built by hand here so that is certain: 60 rows near the query, the named
    // one orthogonal to it.
    const user = await newUser();
    const scope = { userId: user.id, instanceId: null };
    const model = 'test-axes';
    for (let i = 0; i < 60; i++) {
      await insertMemory(t.services.prisma, {
        scope,
        content: `User wrote diary entry number ${i}`,
        category: 'OTHER',
        confidence: null,
        embedding: axis(0, 0.01 * (i + 1)),
        embeddingModel: model,
        sourceMessageId: null,
        sourceSessionId: null,
      });
    }
    // Five rows name her, all orthogonal to the query: none is among the 50 nearest.
    const named = [0, 1, 2, 3, 4].map((i) => `User's pen pal Xochitl sent postcard number ${i}`);
    for (const content of named) {
      await insertMemory(t.services.prisma, {
        scope,
        content,
        category: 'RELATION',
        confidence: null,
        embedding: axis(1),
        embeddingModel: model,
        sourceMessageId: null,
        sourceSessionId: null,
      });
    }
    // Equal weights (the defaults weigh words more), so both sides' firsts tie, and a meaning
    // side of 50 rows, as this case states (the default depth, 100, would reach the named ones).
    const hits = await searchLayerHybrid(
      t.services.prisma,
      scope,
      { embedding: axis(0), model, text: 'Xochitl', k: 7 },
      { ...DEFAULT_FUSION, vectorWeight: 1, lexicalWeight: 1, vectorDepth: 50 },
    );
    // Each is first by words (a tie: one mention each), the diary entry 0 first by meaning:
    // all score 0.5, and the word matches come first.
    expect(new Set(hits.slice(0, 5).map((h) => h.memory.content))).toEqual(new Set(named));
    expect(hits.slice(5).map((h) => h.memory.content)).toEqual([
      'User wrote diary entry number 0',
      'User wrote diary entry number 1',
    ]);
    expect(hits.slice(0, 6).every((h) => Math.abs(h.score - 0.5) < 1e-9)).toBe(true);
  });
});

describe('hostile search strings are only words', () => {
  const HOSTILE = [
    "'",
    '"',
    '\\',
    "\\'",
    '"unterminated phrase',
    "it's O'Brien's \"quote\"",
    '& | ! ( ) : * <-> <2>',
    'a:* & !b | (c <-> d)',
    '!!!',
    '-',
    '- - -',
    'or',
    'or or and not',
    '[1,2,3]',
    '[0.1, 0.2, 0.3]::vector',
    "'[1,2,3]'::vector <=> embedding",
    "'; DROP TABLE memories; --",
    "Xochitl' OR '1'='1",
    '$1 $$ %s %_ {{x}} #{x}',
    'emoji 🧪🔥 and 東京 and zoë',
    'the of and is',
    "\\x00 \\u0000 E'\\\\'",
    ')'.repeat(500),
    'a '.repeat(250).trim(),
  ];

  // 96 searches through the real embedder and both rankings.
  it('accepts every string in both modes, in both layers, and changes nothing', {
    timeout: LONG_TEST_TIMEOUT_MS,
  }, async () => {
    const user = await newUser();
    await store({ userId: user.id, instanceId: null }, CORPUS.slice(0, 5));
    const personas = await personaIds(t, user.token);
    const { instanceId } = await startChat(t, user.token, personas.rook as string);
    const before = await t.services.prisma.memory.count();
    for (const search of HOSTILE) {
      for (const searchMode of ['HYBRID', 'VECTOR']) {
        const p = await t.gql<Page>(PROFILE, { search, searchMode }, user.token);
        expect(p.errors, `${searchMode} ${JSON.stringify(search)}`).toBeUndefined();
        expect(Array.isArray(p.data?.memories.edges)).toBe(true);
        const r = await t.gql<Page>(RELATIONSHIP, { instanceId, search, searchMode }, user.token);
        expect(r.errors, `${searchMode} ${JSON.stringify(search)}`).toBeUndefined();
      }
    }
    expect(await t.services.prisma.memory.count()).toBe(before);
    // NUL cannot be stored or searched for; like every argument, it is refused up front.
    const nul = await t.gql<Page>(PROFILE, { search: 'Xochitl\u0000postcards' }, user.token);
    expect(codesOf(nul)).toEqual(['BAD_USER_INPUT']);
  });
});

describe('pagination', () => {
  it('listing cursors stay exact while memories are added', async () => {
    const user = await newUser();
    const scope = { userId: user.id, instanceId: null };
    const items = Array.from(
      { length: 12 },
      (_, i) =>
        [
          `User's note number ${i} about ${i % 2 ? 'music' : 'food'}`,
          i % 2 ? 'PREFERENCE' : 'FACT',
        ] as const,
    );
    const ids = await store(scope, items);
    for (const [i, id] of ids.entries()) {
      await setCreatedAt(id, new Date(Date.UTC(2025, 0, 1 + i)).toISOString());
    }
    // Two rows with the same timestamp: the id breaks the tie, and the cursor carries both.
    await setCreatedAt(ids[3] as string, new Date(Date.UTC(2025, 0, 5)).toISOString());
    const expected = async (variables: Record<string, unknown>) =>
      (await profile(user.token, variables)).edges.map((e) => e.node.id);

    for (const filter of [
      {},
      { category: 'FACT' },
      { createdBefore: '2025-01-10T00:00:00.000Z', createdAfter: '2025-01-02T00:00:00.000Z' },
    ]) {
      const all = await expected(filter);
      const seen: string[] = [];
      let after: string | null = null;
      let n = 0;
      do {
        const page: Page['memories'] = await profile(user.token, { ...filter, first: 2, after });
        seen.push(...page.edges.map((e) => e.node.id));
        after = page.pageInfo.hasNextPage ? page.pageInfo.endCursor : null;
        // Newer memories arrive between pages: they belong before the first page, never in
        // the pages still to come.
        const [added] = await store(scope, [
          [`User's fresh note ${JSON.stringify(filter)} ${n}`, 'FACT'],
        ]);
        n += 1;
        expect(added).toBeTruthy();
      } while (after);
      expect(seen, JSON.stringify(filter)).toEqual(all);
    }
  });

  it('aliased listings in one request page exactly as they do one by one', async () => {
    // A dashboard lists every persona instance in one request: the listings are batched into
    // one statement, which must not let pages, positions or filters bleed into each other.
    const user = await newUser();
    const personas = await personaIds(t, user.token);
    const instances: string[] = [];
    for (const slug of ['mira', 'rook']) {
      const { instanceId } = await startChat(t, user.token, personas[slug] as string);
      instances.push(instanceId);
      const scope = { userId: user.id, instanceId: decodeGlobalID(instanceId).id };
      await store(
        scope,
        Array.from(
          { length: 5 },
          (_, i) => [`User and ${slug} shared moment ${i}`, 'EVENT'] as const,
        ),
      );
    }
    await store({ userId: user.id, instanceId: null }, CORPUS.slice(0, 6));
    const [mira, rook] = instances as [string, string];
    const firstMira = dataOf(
      await t.gql<Page>(RELATIONSHIP, { instanceId: mira, first: 2 }, user.token),
    ).memories;
    const calls: [string, Record<string, unknown>][] = [
      ['relationshipMemories', { instanceId: mira, first: 2 }],
      ['relationshipMemories', { instanceId: mira, first: 2, after: firstMira.pageInfo.endCursor }],
      ['relationshipMemories', { instanceId: rook, first: 2 }],
      ['relationshipMemories', { instanceId: rook, first: 10 }],
      ['relationshipMemories', { instanceId: rook, first: 10, category: 'FACT' }],
      ['profileMemories', { first: 4 }],
      ['profileMemories', { first: 4, category: 'PREFERENCE' }],
    ];
    const literal = (v: unknown) =>
      typeof v === 'string' && /^[A-Z]+$/.test(v) ? v : JSON.stringify(v);
    const batched = `query { ${calls
      .map(([field, args], i) => {
        const list = Object.entries(args).map(([k, v]) => `${k}: ${literal(v)}`);
        return `a${i}: ${field}(${list.join(', ')}) { ${SELECTION} }`;
      })
      .join('\n')} }`;
    const together = dataOf(await t.gql<Record<string, Page['memories']>>(batched, {}, user.token));
    for (const [i, [field, args]] of calls.entries()) {
      const alone = dataOf(
        await t.gql<Page>(field === 'profileMemories' ? PROFILE : RELATIONSHIP, args, user.token),
      ).memories;
      expect(together[`a${i}`], JSON.stringify(args)).toEqual(alone);
    }
    expect(together.a0?.edges).toHaveLength(2);
    expect(together.a1?.edges).toHaveLength(2);
    expect(together.a3?.edges).toHaveLength(5);
    expect(together.a4?.edges).toEqual([]);
  });

  it('search pages by offset: each memory once, in ranking order', async () => {
    const user = await newUser();
    await store({ userId: user.id, instanceId: null }, CORPUS);
    for (const searchMode of ['HYBRID', 'VECTOR']) {
      const all = (await profile(user.token, { search: 'nurse Lisbon', searchMode })).edges;
      const seen: Edge[] = [];
      let after: string | null = null;
      do {
        const page: Page['memories'] = await profile(user.token, {
          search: 'nurse Lisbon',
          searchMode,
          first: 7,
          after,
        });
        seen.push(...page.edges);
        after = page.pageInfo.hasNextPage ? page.pageInfo.endCursor : null;
      } while (after);
      expect(seen.map((e) => [e.node.id, e.score])).toEqual(all.map((e) => [e.node.id, e.score]));
      expect(all).toHaveLength(CORPUS.length);
    }
    // A listing cursor is not a search cursor.
    const listing = await profile(user.token, { first: 1 });
    const mixed = await t.gql(
      PROFILE,
      { search: 'nurse', after: listing.pageInfo.endCursor },
      user.token,
    );
    expect(codesOf(mixed)).toEqual(['BAD_USER_INPUT']);
  });
});

describe('access is unchanged', () => {
  it('owner and admin search; a stranger gets FORBIDDEN or NOT_FOUND; anonymous is refused', async () => {
    const owner = await newUser();
    const stranger = await newUser();
    const admin = await newUser({ admin: true });
    await store({ userId: owner.id, instanceId: null }, [[XOCHITL, 'RELATION']]);
    const personas = await personaIds(t, owner.token);
    const { instanceId } = await startChat(t, owner.token, personas.mira as string);
    const userId = encodeGlobalID('User', owner.id);
    const args = {
      search: 'Xochitl',
      searchMode: 'HYBRID',
      includeSuperseded: true,
      createdAfter: '2000-01-01T00:00:00.000Z',
    };

    const asAdmin = dataOf(await t.gql<Page>(PROFILE, { userId, ...args }, admin.token));
    expect(contents(asAdmin.memories)).toEqual([XOCHITL]);
    const own = dataOf(await t.gql<Page>(PROFILE, { userId, ...args }, owner.token));
    expect(contents(own.memories)).toEqual([XOCHITL]);

    const stolen = await t.gql<Page>(PROFILE, { userId, ...args }, stranger.token);
    expect(codesOf(stolen)).toEqual(['FORBIDDEN']);
    expect(stolen.data ?? null).toBeNull();
    const rel = await t.gql<Page>(RELATIONSHIP, { instanceId, ...args }, stranger.token);
    expect(codesOf(rel)).toEqual(['NOT_FOUND']);
    expect(
      dataOf(await t.gql<Page>(RELATIONSHIP, { instanceId, ...args }, admin.token)),
    ).toBeTruthy();

    const anonymous = await t.gql<Page>(PROFILE, args);
    expect(codesOf(anonymous)).toEqual(['UNAUTHENTICATED']);
  });
});
