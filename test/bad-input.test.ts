import { encodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codesOf, createTestContext, type TestContext } from './helpers/app.js';
import { personaIds, startChat } from './helpers/chat.js';
import {
  PROFILE_MEMORIES,
  RELATIONSHIP_MEMORIES,
  SEND_MESSAGE,
  START_CHAT,
} from './helpers/operations.js';

let t: TestContext;
let user: { id: string; token: string };
let sessionId: string;
let personaId: string;

beforeAll(async () => {
  t = await createTestContext();
  user = await t.newUser();
  personaId = (await personaIds(t, user.token)).mira as string;
  ({ sessionId } = await startChat(t, user.token, personaId));
});
afterAll(() => t?.close());

const send = (vars: Record<string, unknown>) =>
  t.gql(SEND_MESSAGE, { sessionId, content: 'hello', clientMessageId: 'c1', ...vars }, user.token);

describe('bad input answers BAD_USER_INPUT and writes nothing', () => {
  it('rejects empty, blank and oversized content', async () => {
    for (const content of ['', '   \n\t ', 'x'.repeat(t.env.MAX_MESSAGE_CHARS + 1)]) {
      const res = await send({ content });
      expect(res.data).toBeNull();
      expect(codesOf(res)).toEqual(['BAD_USER_INPUT']);
    }
    expect(await t.services.prisma.message.count()).toBe(0);
  });

  it('rejects malformed client message ids', async () => {
    for (const clientMessageId of ['', 'has spaces', 'x'.repeat(129)]) {
      expect(codesOf(await send({ clientMessageId }))).toEqual(['BAD_USER_INPUT']);
    }
  });

  it('rejects malformed and mistyped global ids', async () => {
    const malformed = [
      'garbage',
      '',
      encodeGlobalID('ChatSession', 'not-a-uuid'),
      encodeGlobalID('Persona', '00000000-0000-4000-8000-000000000000'),
      "'; DROP TABLE messages; --",
    ];
    for (const id of malformed) {
      expect(codesOf(await send({ sessionId: id })), id).toEqual(['BAD_USER_INPUT']);
      expect(
        codesOf(await t.gql(RELATIONSHIP_MEMORIES, { instanceId: id }, user.token)),
        id,
      ).toEqual(['BAD_USER_INPUT']);
      expect(
        codesOf(
          await t.gql(START_CHAT, { personaId: id === malformed[3] ? sessionId : id }, user.token),
        ),
        id,
      ).toEqual(['BAD_USER_INPUT']);
    }
    expect(codesOf(await t.gql(PROFILE_MEMORIES, { userId: 'nope' }, user.token))).toEqual([
      'BAD_USER_INPUT',
    ]);
  });

  it('a well-formed id of nothing is NOT_FOUND', async () => {
    const missing = encodeGlobalID('ChatSession', '00000000-0000-4000-8000-000000000000');
    expect(codesOf(await send({ sessionId: missing }))).toEqual(['NOT_FOUND']);
    const persona = encodeGlobalID('Persona', '00000000-0000-4000-8000-000000000000');
    expect(codesOf(await t.gql(START_CHAT, { personaId: persona }, user.token))).toEqual([
      'NOT_FOUND',
    ]);
  });

  it('rejects out-of-range page sizes and foreign cursors', async () => {
    for (const first of [0, -1, 101]) {
      expect(codesOf(await t.gql(PROFILE_MEMORIES, { first }, user.token))).toEqual([
        'BAD_USER_INPUT',
      ]);
    }
    expect(codesOf(await t.gql(PROFILE_MEMORIES, { after: 'bm9wZQ' }, user.token))).toEqual([
      'BAD_USER_INPUT',
    ]);
    expect(codesOf(await t.gql(PROFILE_MEMORIES, { search: 'x'.repeat(501) }, user.token))).toEqual(
      ['BAD_USER_INPUT'],
    );
  });

  it('node(id) with a malformed id is BAD_USER_INPUT, not a crash', async () => {
    for (const id of [
      'garbage',
      encodeGlobalID('Memory', 'not-a-uuid'),
      encodeGlobalID('Nope', 'x'),
    ]) {
      const res = await t.gql('query($id: ID!) { node(id: $id) { id } }', { id }, user.token);
      expect(codesOf(res), id).toEqual(['BAD_USER_INPUT']);
    }
  });
});
