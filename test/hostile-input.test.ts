import { encodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codesOf, createTestContext, dataOf, type TestContext } from './helpers/app.js';
import { personaIds, send, startChat } from './helpers/chat.js';
import { expectCleanErrors } from './helpers/http.js';

/**
 * Hostile GraphQL documents and oversized arguments, through `app.fetch` (no HTTP body limit
 * in front, so every argument limit is the API's own). Operations over a limit are refused
 * before anything runs; oversized arguments are BAD_USER_INPUT and write nothing.
 */
let t: TestContext;
let user: { id: string; token: string };
let admin: { id: string; token: string };
let sessionId: string;
let instanceId: string;
let memoryId: string;

beforeAll(async () => {
  t = await createTestContext();
  user = await t.newUser();
  admin = await t.newUser({ admin: true });
  const chat = await startChat(t, user.token, (await personaIds(t, user.token)).mira as string);
  ({ sessionId, instanceId } = chat);
  await send(t, user.token, sessionId, "I'm a pilot and we laughed about your jokes");
  await t.drainJobs();
  const memory = await t.services.prisma.memory.findFirstOrThrow({ where: { userId: user.id } });
  memoryId = encodeGlobalID('Memory', memory.id);
});
afterAll(() => t?.close());

const LIMIT_CODES = ['GRAPHQL_VALIDATION_FAILED', 'GRAPHQL_PARSE_FAILED'];

/** Runs a document and checks it was refused by a limit, quickly and without data. */
async function expectRefused(query: string, what: string, variables: Record<string, unknown> = {}) {
  const started = performance.now();
  const res = await t.gql(query, variables, user.token);
  expect(performance.now() - started, `${what} took too long`).toBeLessThan(3000);
  expect(res.data ?? null, what).toBeNull();
  expect(res.errors?.length, what).toBeGreaterThan(0);
  expectCleanErrors(res, what, LIMIT_CODES);
}

/** `memory { supersededBy { supersededBy { … { id } } } }`, `depth` fields deep. */
const deepMemory = (depth: number) =>
  `query($id: ID!) { memory(id: $id) { ${'supersededBy { '.repeat(depth - 2)}id${' }'.repeat(depth - 2)} } }`;

/** The same depth spread through one fragment per level (fragments must not hide depth). */
function deepFragments(depth: number): string {
  const levels = depth - 2;
  const fragments = Array.from({ length: levels }, (_, i) =>
    i === levels - 1
      ? `fragment F${i} on Memory { supersededBy { id } }`
      : `fragment F${i} on Memory { supersededBy { ...F${i + 1} } }`,
  );
  return `query($id: ID!) { memory(id: $id) { ...F0 } } ${fragments.join(' ')}`;
}

describe('operation limits', () => {
  it('answers a query just inside GRAPHQL_MAX_DEPTH', async () => {
    const res = await t.gql(deepMemory(t.env.GRAPHQL_MAX_DEPTH - 1), { id: memoryId }, user.token);
    expect(dataOf(res)).toEqual({ memory: { supersededBy: null } });
  });

  it.each([
    ['one level over GRAPHQL_MAX_DEPTH', () => deepMemory(t.env.GRAPHQL_MAX_DEPTH + 1)],
    ['over the depth through nested fragments', () => deepFragments(t.env.GRAPHQL_MAX_DEPTH + 1)],
    ['a depth bomb (500 levels)', () => deepMemory(500)],
    [
      'over the depth through a connection (profileMemories → … → supersededBy → instance → persona)',
      () => {
        const chain = 'supersededBy { '.repeat(t.env.GRAPHQL_MAX_DEPTH - 4);
        const closing = ' }'.repeat(t.env.GRAPHQL_MAX_DEPTH - 4);
        return `{ profileMemories { edges { node { ${chain}instance { persona { id } }${closing} } } } }`;
      },
    ],
  ])('refuses %s', async (what, query) => {
    await expectRefused(query(), what, { id: memoryId });
  });

  it.each([
    [
      'aliases over GRAPHQL_MAX_ALIASES',
      () =>
        `{ viewer { ${Array.from({ length: t.env.GRAPHQL_MAX_ALIASES + 1 }, (_, i) => `a${i}: id`).join(' ')} } }`,
    ],
    [
      'an alias bomb on an expensive field',
      () =>
        `{ ${Array.from({ length: 200 }, (_, i) => `s${i}: profileMemories(search: "pilot") { edges { node { content } } }`).join(' ')} }`,
    ],
    [
      'directives over GRAPHQL_MAX_DIRECTIVES',
      () => `{ viewer { id ${'@include(if: true) '.repeat(t.env.GRAPHQL_MAX_DIRECTIVES + 1)} } }`,
    ],
    ['a directive bomb', () => `{ viewer { id ${'@skip(if: false) '.repeat(1000)} } }`],
    ['a token bomb', () => `{ viewer { ${'id '.repeat(t.env.GRAPHQL_MAX_TOKENS + 1)} } }`],
    [
      'hundreds of operations in one document',
      () => Array.from({ length: 500 }, (_, i) => `query Q${i} { viewer { id } }`).join('\n'),
    ],
    [
      'hundreds of variables',
      () =>
        `query(${Array.from({ length: 800 }, (_, i) => `$v${i}: String`).join(', ')}) { viewer { id } }`,
    ],
    [
      'an exponential fragment bomb',
      () =>
        `{ profileMemories { edges { node { ...F9 } } } }
         fragment F0 on Memory { id content }
         ${Array.from({ length: 9 }, (_, i) => `fragment F${i + 1} on Memory { ...F${i} supersededBy { ...F${i} } sourceMessage { id } }`).join('\n')}`,
    ],
  ])('refuses %s', async (what, query) => {
    await expectRefused(query(), what);
  });

  it('answers a fragment spread 600 times (fields merge) or refuses it by cost', async () => {
    const query = `{ viewer { ${'...U '.repeat(600)} } } fragment U on User { id createdAt }`;
    const started = performance.now();
    const res = await t.gql(query, {}, user.token);
    expect(performance.now() - started).toBeLessThan(3000);
    expectCleanErrors(res, 'fragment spread', LIMIT_CODES);
    if (!res.errors)
      expect(res.data).toEqual({
        viewer: { id: expect.any(String), createdAt: expect.any(String) },
      });
  });

  it('answers a wide but cheap query (repeated fields merge)', async () => {
    const res = await t.gql(`{ viewer { ${'id createdAt '.repeat(300)} } }`, {}, user.token);
    expect(dataOf(res)).toEqual({
      viewer: { id: expect.any(String), createdAt: expect.any(String) },
    });
  });

  it('refuses a 1 MB field name or string literal', async () => {
    for (const query of [
      `{ ${'a'.repeat(1_000_000)} }`,
      `{ viewer(x: "${'a'.repeat(1_000_000)}") { id } }`,
    ]) {
      const res = await t.gql(query, {}, user.token);
      expectCleanErrors(res, query.slice(0, 20), LIMIT_CODES);
      expect(res.errors?.length).toBeGreaterThan(0);
    }
  });
});

const MB = 'x'.repeat(1_000_000);
const CREATE_PERSONA = (field: string) => {
  const input = {
    slug: '"huge"',
    name: '"Huge"',
    description: '"d"',
    greeting: '"g"',
    systemPrompt: '"p"',
  };
  const fields = Object.entries({ ...input, [field]: '$big' }).map(([k, v]) => `${k}: ${v}`);
  return `mutation($big: ${field === 'traits' ? 'JSONObject' : 'String!'}) { createPersona(input: { ${fields.join(', ')} }) { persona { id } } }`;
};

// Each operation may use $big (the 1 MB string) and the user's $sessionId, $instanceId, $memoryId.
const HUGE_AS_USER: Record<string, string> = {
  'sendMessage content':
    'mutation($sessionId: ID!, $big: String!) { sendMessage(input: { sessionId: $sessionId, content: $big, clientMessageId: "huge-1" }) { reply { id } } }',
  'sendMessage clientMessageId':
    'mutation($sessionId: ID!, $big: String!) { sendMessage(input: { sessionId: $sessionId, content: "hi", clientMessageId: $big }) { reply { id } } }',
  'sendMessage sessionId':
    'mutation($big: ID!) { sendMessage(input: { sessionId: $big, content: "hi", clientMessageId: "huge-2" }) { reply { id } } }',
  'profileMemories search (hybrid)':
    'query($big: String) { profileMemories(search: $big) { edges { cursor } } }',
  'profileMemories search (vector)':
    'query($big: String) { profileMemories(search: $big, searchMode: VECTOR) { edges { cursor } } }',
  'relationshipMemories search':
    'query($instanceId: ID!, $big: String) { relationshipMemories(instanceId: $instanceId, search: $big) { edges { cursor } } }',
  'profileMemories after':
    'query($big: String) { profileMemories(after: $big) { edges { cursor } } }',
  'profileMemories after (search)':
    'query($big: String) { profileMemories(search: "pilot", after: $big) { edges { cursor } } }',
  'profileMemories createdAfter':
    'query($big: DateTime) { profileMemories(createdAfter: $big) { edges { cursor } } }',
  'Memory.history after':
    'query($memoryId: ID!, $big: String) { memory(id: $memoryId) { history(after: $big) { edges { cursor } } } }',
  'User.sessions after':
    'query($big: String) { viewer { sessions(after: $big) { edges { cursor } } } }',
  'ChatSession.messages after':
    'query($sessionId: ID!, $big: String) { chatSession(id: $sessionId) { messages(after: $big) { edges { cursor } } } }',
  'personas after': 'query($big: String) { personas(after: $big) { edges { cursor } } }',
  'updateMemory content':
    'mutation($memoryId: ID!, $big: String) { updateMemory(input: { memoryId: $memoryId, content: $big }) { memory { id } } }',
  'memory id': 'query($big: ID!) { memory(id: $big) { id } }',
  'node id': 'query($big: ID!) { node(id: $big) { id } }',
};
const HUGE_AS_ADMIN: Record<string, string> = {
  ...Object.fromEntries(
    ['slug', 'name', 'description', 'greeting', 'systemPrompt'].map((field) => [
      `createPersona ${field}`,
      CREATE_PERSONA(field),
    ]),
  ),
  'updatePersona systemPrompt': `mutation($big: String) { updatePersona(input: { personaId: "${encodeGlobalID('Persona', '00000000-0000-4000-8000-000000000000')}", systemPrompt: $big }) { persona { id } } }`,
};

describe('a 1 MB string in every string argument', () => {
  const cases = [
    ...Object.entries(HUGE_AS_USER).map(([what, query]) => [what, query, MB, false] as const),
    ...Object.entries(HUGE_AS_ADMIN).map(([what, query]) => [what, query, MB, true] as const),
    ['createPersona traits', CREATE_PERSONA('traits'), { bio: MB }, true] as const,
    [
      'createPersona traits (100 000 keys)',
      CREATE_PERSONA('traits'),
      Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`k${i}`, i])),
      true,
    ] as const,
  ];
  it.each(cases)('%s is BAD_USER_INPUT and writes nothing', async (what, query, big, asAdmin) => {
    const prisma = t.services.prisma;
    const counts = () =>
      Promise.all([prisma.message.count(), prisma.persona.count(), prisma.memoryHistory.count()]);
    const before = await counts();
    const variables = { big, sessionId, instanceId, memoryId };
    const res = await t.gql(query, variables, asAdmin ? admin.token : user.token);
    expect(
      Object.values(res.data ?? {}).every((v) => v === null),
      what,
    ).toBe(true);
    expect(codesOf(res), what).toEqual(['BAD_USER_INPUT']);
    expect(await counts(), what).toEqual(before);
  });
});

describe('numbers and enums out of range', () => {
  it.each([
    ['first: 0', { first: 0 }],
    ['first: -1', { first: -1 }],
    ['first: 2147483647', { first: 2147483647 }],
    ['first: 2^31 (not an Int)', { first: 2 ** 31 }],
    ['first: 1.5', { first: 1.5 }],
    ['first: "10"', { first: '10' }],
    ['category: "DROP"', { category: 'DROP' }],
    ['createdAfter: year 0', { createdAfter: '0000-01-01T00:00:00Z' }],
    ['createdAfter: year -271821', { createdAfter: '-271821-04-20T00:00:00.000Z' }],
    ['createdAfter: year 275760', { createdAfter: '+275760-09-13T00:00:00.000Z' }],
    [
      'createdBefore before createdAfter',
      { createdAfter: '2030-01-01T00:00:00Z', createdBefore: '2020-01-01T00:00:00Z' },
    ],
  ])('%s is refused as bad input', async (what, variables) => {
    const query = `query($first: Int, $category: MemoryCategory, $createdAfter: DateTime, $createdBefore: DateTime) {
      profileMemories(first: $first, category: $category, createdAfter: $createdAfter, createdBefore: $createdBefore) { edges { cursor } } }`;
    const res = await t.gql(query, variables, user.token);
    expect(res.data?.profileMemories ?? null, what).toBeNull();
    expect(codesOf(res).length, what).toBeGreaterThan(0);
    expectCleanErrors(res, what, ['BAD_USER_INPUT']);
  });

  it.each([
    ['sessions(first: -1)', '{ viewer { sessions(first: -1) { edges { cursor } } } }'],
    [
      'personas(before: garbage, after: garbage)',
      '{ personas(before: "x", after: "y") { edges { cursor } } }',
    ],
    [
      'history(first: 101)',
      'query($id: ID!) { memory(id: $id) { history(first: 101) { edges { cursor } } } }',
    ],
  ])('%s is BAD_USER_INPUT', async (what, query) => {
    const res = await t.gql(query, { id: memoryId }, user.token);
    expect(codesOf(res).length, what).toBeGreaterThan(0);
    expectCleanErrors(res, what, ['BAD_USER_INPUT']);
  });
});

describe('rows asked for across all lists (GRAPHQL_MAX_LIST_ITEMS)', () => {
  // graphql-armor prices `first` only as a literal; with variables the budget is what holds.
  const aliased = (n: number) =>
    `query($s: Int, $m: Int) { ${Array.from(
      { length: n },
      (_, i) =>
        `a${i}: viewer { sessions(first: $s) { edges { node { messages(first: $m) { edges { node { id } } } } } } }`,
    ).join(' ')} }`;

  it('refuses aliased nested pages that add up past the budget', async () => {
    const owner = await t.newUser();
    const persona = (await personaIds(t, owner.token)).mira as string;
    for (let i = 0; i < 4; i++) await startChat(t, owner.token, persona);
    const over = await t.gql(aliased(15), { s: 100, m: 100 }, owner.token);
    expect(codesOf(over)).toContain('BAD_USER_INPUT');
    expect(over.errors?.[0]?.message).toMatch(/more than 5000 list items/);
    // The same shape with modest pages is fine.
    dataOf(await t.gql(aliased(15), { s: 10, m: 20 }, owner.token));
  });
});
