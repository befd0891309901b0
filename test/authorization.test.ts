import { encodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codesOf, createTestContext, dataOf, type TestContext } from './helpers/app.js';
import { personaIds, send, startChat } from './helpers/chat.js';
import {
  type MemoryPage,
  PROFILE_MEMORIES,
  RELATIONSHIP_MEMORIES,
  SEND_MESSAGE,
} from './helpers/operations.js';

let t: TestContext;
let owner: { id: string; token: string };
let stranger: { id: string; token: string };
let ids: Record<string, string>;

const NODE = /* GraphQL */ `
  query Node($id: ID!) {
    node(id: $id) {
      id
      ... on Memory { content }
      ... on Message { content }
      ... on ChatSession { createdAt }
      ... on PersonaInstance { createdAt }
      ... on User { createdAt }
    }
  }`;

beforeAll(async () => {
  t = await createTestContext();
  owner = await t.newUser();
  stranger = await t.newUser();
  const personas = await personaIds(t, owner.token);
  const chat = await startChat(t, owner.token, personas.mira as string);
  const turn = await send(
    t,
    owner.token,
    chat.sessionId,
    "I'm a pilot and we laughed about your jokes",
  );
  await t.drainJobs();
  const profile = dataOf(
    await t.gql<{ profileMemories: MemoryPage }>(PROFILE_MEMORIES, {}, owner.token),
  );
  const rel = dataOf(
    await t.gql<{ relationshipMemories: MemoryPage }>(
      RELATIONSHIP_MEMORIES,
      { instanceId: chat.instanceId },
      owner.token,
    ),
  );
  const profileMemory = profile.profileMemories.edges[0]?.node.id;
  const relationshipMemory = rel.relationshipMemories.edges[0]?.node.id;
  if (!profileMemory || !relationshipMemory) throw new Error('setup wrote no memories');
  ids = {
    session: chat.sessionId,
    instance: chat.instanceId,
    userMessage: turn.userMessage.id,
    reply: turn.reply.id,
    profileMemory,
    relationshipMemory,
    user: encodeGlobalID('User', owner.id),
  };
});
afterAll(() => t?.close());

describe("another user's data is unreachable from every entry point", () => {
  it('node(id) answers null, as for a missing id, for every owned type', async () => {
    for (const [what, id] of Object.entries(ids)) {
      const res = await t.gql<{ node: unknown }>(NODE, { id }, stranger.token);
      expect(res, what).toEqual({ data: { node: null } });
      // ...while the owner reads each of them.
      const mine = await t.gql<{ node: { id: string } }>(NODE, { id }, owner.token);
      expect(dataOf(mine).node.id, what).toBe(id);
    }
  });

  it('profileMemories(userId:) is admin-only', async () => {
    const res = await t.gql(PROFILE_MEMORIES, { userId: ids.user }, stranger.token);
    expect(res.data).toBeNull();
    expect(codesOf(res)).toEqual(['FORBIDDEN']);
    const raw = await t.gql(PROFILE_MEMORIES, { userId: owner.id }, stranger.token);
    expect(codesOf(raw)).toEqual(['FORBIDDEN']);

    const admin = await t.newUser({ admin: true });
    const asAdmin = dataOf(
      await t.gql<{ profileMemories: MemoryPage }>(
        PROFILE_MEMORIES,
        { userId: ids.user },
        admin.token,
      ),
    );
    expect(asAdmin.profileMemories.edges.length).toBeGreaterThan(0);
  });

  it("relationshipMemories of someone else's instance is NOT_FOUND", async () => {
    const res = await t.gql(RELATIONSHIP_MEMORIES, { instanceId: ids.instance }, stranger.token);
    expect(res.data).toBeNull();
    expect(codesOf(res)).toEqual(['NOT_FOUND']);
  });

  it("sendMessage into someone else's session is NOT_FOUND and writes nothing", async () => {
    const before = await t.services.prisma.message.count();
    const res = await t.gql(
      SEND_MESSAGE,
      { sessionId: ids.session, content: 'hi', clientMessageId: 'x1' },
      stranger.token,
    );
    expect(res.data).toBeNull();
    expect(codesOf(res)).toEqual(['NOT_FOUND']);
    expect(await t.services.prisma.message.count()).toBe(before);
  });

  it("the stranger's own listings stay empty", async () => {
    const res = dataOf(
      await t.gql<{ profileMemories: MemoryPage }>(PROFILE_MEMORIES, {}, stranger.token),
    );
    expect(res.profileMemories.edges).toEqual([]);
  });

  it('anonymous requests are UNAUTHENTICATED; bad tokens too', async () => {
    expect(codesOf(await t.gql(PROFILE_MEMORIES, {}))).toEqual(['UNAUTHENTICATED']);
    expect(codesOf(await t.gql(NODE, { id: ids.profileMemory }))).toEqual(['UNAUTHENTICATED']);
    expect(codesOf(await t.gql(PROFILE_MEMORIES, {}, 'not-a-jwt'))).toEqual(['UNAUTHENTICATED']);
  });
});
