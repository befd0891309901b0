import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codesOf, createTestContext, dataOf, type TestContext } from './helpers/app.js';
import { personaIds, send, startChat } from './helpers/chat.js';

let t: TestContext;
let owner: { id: string; token: string };
let chat: { sessionId: string; instanceId: string };
let personaId: string;

const SESSION = /* GraphQL */ `
  query($id: ID!, $first: Int, $after: String) {
    chatSession(id: $id) {
      id
      instance { id persona { name } }
      messages(first: $first, after: $after) {
        edges { node { role content } }
        pageInfo { hasNextPage endCursor }
      }
    }
  }`;
const INSTANCE = /* GraphQL */ `query($id: ID!) { personaInstance(id: $id) { id persona { name } } }`;
const VIEWER = /* GraphQL */ `
  query { viewer { instances(first: 5) { edges { node { id } } } sessions(first: 5) { edges { node { id } } } } }`;

beforeAll(async () => {
  t = await createTestContext();
  owner = await t.newUser();
  personaId = (await personaIds(t, owner.token)).mira as string;
  chat = await startChat(t, owner.token, personaId);
  for (const text of ['first', 'second', 'third']) await send(t, owner.token, chat.sessionId, text);
});
afterAll(() => t?.close());

interface SessionData {
  chatSession: {
    instance: { id: string };
    messages: {
      edges: { node: { role: string; content: string } }[];
      pageInfo: { hasNextPage: boolean; endCursor: string };
    };
  } | null;
}

describe('sessions and instances', () => {
  it('chatSession pages its messages newest first', async () => {
    const page1 = dataOf(
      await t.gql<SessionData>(SESSION, { id: chat.sessionId, first: 4 }, owner.token),
    );
    const session = page1.chatSession;
    expect(session?.instance.id).toBe(chat.instanceId);
    expect(session?.messages.edges.map((e) => e.node.role)).toEqual([
      'ASSISTANT',
      'USER',
      'ASSISTANT',
      'USER',
    ]);
    expect(session?.messages.edges[1]?.node.content).toBe('third');
    expect(session?.messages.pageInfo.hasNextPage).toBe(true);
    const page2 = dataOf(
      await t.gql<SessionData>(
        SESSION,
        { id: chat.sessionId, first: 4, after: session?.messages.pageInfo.endCursor },
        owner.token,
      ),
    );
    expect(page2.chatSession?.messages.edges.map((e) => e.node.content).at(-1)).toBe('first');
    expect(page2.chatSession?.messages.pageInfo.hasNextPage).toBe(false);
  });

  it('personaInstance and viewer.instances / viewer.sessions', async () => {
    const inst = dataOf(
      await t.gql<{ personaInstance: { persona: { name: string } } }>(
        INSTANCE,
        { id: chat.instanceId },
        owner.token,
      ),
    );
    expect(inst.personaInstance.persona.name).toBe('Mira');
    const viewer = dataOf(
      await t.gql<{
        viewer: {
          instances: { edges: { node: { id: string } }[] };
          sessions: { edges: { node: { id: string } }[] };
        };
      }>(VIEWER, {}, owner.token),
    );
    expect(viewer.viewer.instances.edges.map((e) => e.node.id)).toEqual([chat.instanceId]);
    expect(viewer.viewer.sessions.edges.map((e) => e.node.id)).toEqual([chat.sessionId]);
  });

  it('strangers get null, as for a missing id; mistyped ids are BAD_USER_INPUT; admins can read', async () => {
    const stranger = await t.newUser();
    for (const [query, id] of [
      [SESSION, chat.sessionId],
      [INSTANCE, chat.instanceId],
    ] as const) {
      const res = await t.gql<Record<string, unknown>>(query, { id }, stranger.token);
      expect(Object.values(res.data ?? {})).toEqual([null]);
      expect(codesOf(res)).toEqual([]);
    }
    expect(codesOf(await t.gql(SESSION, { id: personaId }, owner.token))).toEqual([
      'BAD_USER_INPUT',
    ]);
    expect(codesOf(await t.gql(INSTANCE, { id: 'garbage' }, owner.token))).toEqual([
      'BAD_USER_INPUT',
    ]);
    const admin = await t.newUser({ admin: true });
    expect(
      dataOf(await t.gql<SessionData>(SESSION, { id: chat.sessionId }, admin.token)).chatSession
        ?.instance.id,
    ).toBe(chat.instanceId);
  });
});
