import { randomUUID } from 'node:crypto';
import { encodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codesOf, createTestContext, dataOf, type TestContext } from './helpers/app.js';
import { personaIds, send, startChat } from './helpers/chat.js';
import { expectCleanErrors, gqlAny } from './helpers/http.js';
import { SEND_MESSAGE, type SendMessageData } from './helpers/operations.js';

/**
 * SQL metacharacters, pgvector operators and awkward Unicode in every free-text input: chat
 * content, search, memory edits, persona fields. Text is data: it is stored and returned
 * verbatim or refused as BAD_USER_INPUT, never executed, never a 500, and the tables survive.
 * Text Postgres cannot store (NUL) or Prisma cannot carry (unpaired UTF-16 surrogates) is
 * refused as BAD_USER_INPUT wherever it would be stored.
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
  ({ sessionId, instanceId } = await startChat(
    t,
    user.token,
    (await personaIds(t, user.token)).mira as string,
  ));
  await send(t, user.token, sessionId, "I'm a pilot and we laughed about your jokes");
  await t.drainJobs();
  const memory = await t.services.prisma.memory.findFirstOrThrow({ where: { userId: user.id } });
  memoryId = encodeGlobalID('Memory', memory.id);
});
afterAll(() => t?.close());

const SQLISH = [
  "'; DROP TABLE memories; --",
  "' OR 1=1 --",
  '" OR ""="',
  '1; SELECT pg_sleep(10); --',
  "'); DELETE FROM messages WHERE ('1'='1",
  '[1,2,3]',
  "'[1,2,3]'::vector",
  '[NaN,Infinity,-Infinity]',
  'embedding <-> embedding',
  '<=> <#> <+> <~> <%>',
  '$1 $2::text $$ $tag$',
  "E'\\x41' \\\\ \\",
  "%_% LIKE '%'",
  '\\N \\. COPY',
  '!:*&|() "unclosed -not or',
  "to_tsquery('a & b')",
  '😀 👨‍👩‍👧‍👦 🏳️‍🌈',
  '\u202eevil\u202c and a\u200bzero\u200fwidth',
  'İstanbul ǅ ß ﷺ ｆｕｌｌ',
  'e\u0301 combining',
  'two\r\nlines',
];
/** NUL (Postgres text cannot hold it) and unpaired surrogates (not Unicode text at all). */
const UNSTORABLE = ['a\u0000b', '\u0000', 'x\ud800', '\udfffy', 'half \ud83d emoji'];

/** Both layers, both search modes, in one request. */
const SEARCH_ALL = `query($i: ID!, $s: String) {
  ph: profileMemories(search: $s) { edges { score node { content } } }
  pv: profileMemories(search: $s, searchMode: VECTOR) { edges { score node { content } } }
  rh: relationshipMemories(instanceId: $i, search: $s) { edges { score node { content } } }
  rv: relationshipMemories(instanceId: $i, search: $s, searchMode: VECTOR) { edges { score } } }`;
const STREAM = `subscription($sessionId: ID!, $content: String!, $clientMessageId: String!) {
  sendMessageStream(input: { sessionId: $sessionId, content: $content, clientMessageId: $clientMessageId }) {
    ... on ReplyDone { turn { userMessage { content } } } } }`;
const UPDATE = `mutation($id: ID!, $c: String) {
  updateMemory(input: { memoryId: $id, content: $c }) { memory { content } } }`;
const CREATE_PERSONA = `mutation($slug: String!, $text: String!, $traits: JSONObject) {
  createPersona(input: { slug: $slug, name: "Tester", description: $text, greeting: $text,
    systemPrompt: $text, traits: $traits }) { persona { id description greeting systemPrompt traits } } }`;

async function tablesIntact() {
  const [row] = await t.services.prisma.$queryRaw<{ tables: number }[]>`
    SELECT count(*)::int AS tables FROM pg_tables
    WHERE schemaname = 'public' AND tablename IN ('memories', 'messages', 'memory_history', 'jobs')`;
  expect(row?.tables).toBe(4);
}

describe('SQL and pgvector syntax is stored and searched as text', () => {
  it.each(SQLISH)('chat content %j is stored verbatim', async (text) => {
    const turn = dataOf(
      await t.gql<SendMessageData>(
        SEND_MESSAGE,
        { sessionId, content: text, clientMessageId: randomUUID() },
        user.token,
      ),
    ).sendMessage;
    expect(turn.userMessage.content).toBe(text.trim());
    const stored = await t.services.prisma.message.findFirstOrThrow({
      where: { userId: user.id, clientMessageId: { not: null } },
      orderBy: { createdAt: 'desc' },
    });
    expect(stored.content).toBe(text.trim());
  });

  it.each(SQLISH.slice(0, 6))('streamed chat content %j is stored verbatim', async (text) => {
    const res = await gqlAny(
      t.app,
      STREAM,
      { sessionId, content: text, clientMessageId: randomUUID() },
      user.token,
    );
    expect(res.errors).toBeUndefined();
    expect(res.data).toEqual({ sendMessageStream: { turn: { userMessage: { content: text } } } });
  });

  it.each(SQLISH)('search for %j answers normally in both layers and modes', async (text) => {
    const res = await t.gql(SEARCH_ALL, { i: instanceId, s: text }, user.token);
    expect(res.errors, text).toBeUndefined();
  });

  it.each(SQLISH.filter((text) => !/\s{2}|^\s|\s$|\r/.test(text)))(
    'a memory edited to %j keeps the text',
    async (text) => {
      const res = await t.gql<{ updateMemory: { memory: { content: string } } }>(
        UPDATE,
        { id: memoryId, c: text },
        user.token,
      );
      expect(dataOf(res).updateMemory.memory.content).toBe(text);
    },
  );

  it('persona fields and traits keep SQL-looking text (admin)', async () => {
    const text = SQLISH.slice(0, 8).join(' | ');
    const traits = { "'; DROP TABLE personas; --": '[1,2,3]', nested: { $1: '<->' } };
    const res = await t.gql<{ createPersona: { persona: Record<string, unknown> } }>(
      CREATE_PERSONA,
      { slug: 'sql-text', text, traits },
      admin.token,
    );
    expect(dataOf(res).createPersona.persona).toMatchObject({
      description: text,
      greeting: text,
      systemPrompt: text,
      traits,
    });
  });

  it('leaves every table in place', tablesIntact);
});

describe('text that cannot be stored', () => {
  it.each(UNSTORABLE)('chat content %j is BAD_USER_INPUT and stores nothing', async (text) => {
    const before = await t.services.prisma.message.count();
    const res = await t.gql(
      SEND_MESSAGE,
      { sessionId, content: text, clientMessageId: randomUUID() },
      user.token,
    );
    expect(res.data ?? null).toBeNull();
    expect(codesOf(res)).toEqual(['BAD_USER_INPUT']);
    expect(await t.services.prisma.message.count()).toBe(before);
  });

  it.each(UNSTORABLE)('streamed chat content %j is BAD_USER_INPUT', async (text) => {
    const before = await t.services.prisma.message.count();
    const res = await gqlAny(
      t.app,
      STREAM,
      { sessionId, content: text, clientMessageId: randomUUID() },
      user.token,
    );
    expect(codesOf(res)).toEqual(['BAD_USER_INPUT']);
    expect(await t.services.prisma.message.count()).toBe(before);
  });

  it.each(UNSTORABLE)('search for %j answers or is BAD_USER_INPUT', async (text) => {
    const res = await t.gql(SEARCH_ALL, { i: instanceId, s: text }, user.token);
    expectCleanErrors(res, JSON.stringify(text), ['BAD_USER_INPUT']);
  });

  it.each(UNSTORABLE)('a memory edit to %j is BAD_USER_INPUT', async (text) => {
    const res = await t.gql(UPDATE, { id: memoryId, c: text }, user.token);
    expect(codesOf(res)).toEqual(['BAD_USER_INPUT']);
  });

  it.each(UNSTORABLE)('persona text or traits with %j are BAD_USER_INPUT (admin)', async (text) => {
    const before = await t.services.prisma.persona.count();
    for (const variables of [
      { slug: 'nul-text', text },
      { slug: 'nul-trait-value', text: 'ok', traits: { bio: text } },
      { slug: 'nul-trait-key', text: 'ok', traits: { [text]: 'value' } },
    ]) {
      const res = await t.gql(CREATE_PERSONA, variables, admin.token);
      expect(codesOf(res), variables.slug).toEqual(['BAD_USER_INPUT']);
    }
    expect(await t.services.prisma.persona.count()).toBe(before);
  });

  it('a NUL written as a GraphQL string literal is refused the same way', async () => {
    const res = await t.gql(
      `mutation { sendMessage(input: { sessionId: "${sessionId}", content: "a\\u0000b", clientMessageId: "literal-nul" }) { reply { id } } }`,
      {},
      user.token,
    );
    expect(codesOf(res)).toEqual(['BAD_USER_INPUT']);
  });

  it('leaves every table in place', tablesIntact);
});
