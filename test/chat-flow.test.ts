import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, dataOf, type TestContext } from './helpers/app.js';
import { personaIds, send, startChat } from './helpers/chat.js';
import { type MemoryPage, PROFILE_MEMORIES, RELATIONSHIP_MEMORIES } from './helpers/operations.js';

let t: TestContext;
beforeAll(async () => {
  t = await createTestContext();
});
afterAll(() => t?.close());

describe('a new user chatting with a persona that remembers', () => {
  it('remembers a profile fact and recalls it in a later turn', async () => {
    const user = await t.newUser();
    const personas = await personaIds(t, user.token);
    expect(Object.keys(personas)).toEqual(expect.arrayContaining(['mira', 'rook']));
    const { sessionId } = await startChat(t, user.token, personas.mira as string);

    const first = await send(t, user.token, sessionId, "I'm a nurse from Lisbon and I love hiking");
    expect(first.userMessage).toMatchObject({
      role: 'USER',
      content: "I'm a nurse from Lisbon and I love hiking",
    });
    expect(first.reply.role).toBe('ASSISTANT');
    expect(first.reply.content.length).toBeGreaterThan(0);
    expect(first.recalled).toEqual({ profile: [], relationship: [] });

    // sendMessage returned before extraction: the job is still waiting.
    const before = dataOf(
      await t.gql<{ profileMemories: MemoryPage }>(PROFILE_MEMORIES, {}, user.token),
    );
    expect(before.profileMemories.edges).toEqual([]);
    expect(await t.drainJobs()).toBe(1);

    const found = dataOf(
      await t.gql<{ profileMemories: MemoryPage }>(
        PROFILE_MEMORIES,
        { search: 'What is my job?' },
        user.token,
      ),
    );
    const contents = found.profileMemories.edges.map((e) => e.node.content);
    expect(contents.some((c) => /nurse/i.test(c))).toBe(true);
    expect(found.profileMemories.edges.every((e) => e.node.layer === 'PROFILE')).toBe(true);
    expect(found.profileMemories.edges.every((e) => typeof e.score === 'number')).toBe(true);

    const second = await send(t, user.token, sessionId, 'Do you remember what I do for work?');
    const recalled = second.recalled.profile.map((r) => r.memory.content);
    expect(recalled.some((c) => /nurse/i.test(c))).toBe(true);
    // The offline companion visibly uses what it recalled.
    expect(second.reply.content).toMatch(/nurse/i);
  });

  it('keeps relationship memories with their persona instance; profile memories are shared', async () => {
    const user = await t.newUser();
    const personas = await personaIds(t, user.token);
    const mira = await startChat(t, user.token, personas.mira as string);
    await send(t, user.token, mira.sessionId, 'We joked about your terrible puns all evening');
    await send(t, user.token, mira.sessionId, 'I work as a carpenter in Porto');
    await t.drainJobs();

    const rel = dataOf(
      await t.gql<{ relationshipMemories: MemoryPage }>(
        RELATIONSHIP_MEMORIES,
        { instanceId: mira.instanceId },
        user.token,
      ),
    );
    expect(rel.relationshipMemories.edges.map((e) => e.node.content).join(' ')).toMatch(/puns/i);
    expect(rel.relationshipMemories.edges.every((e) => e.node.layer === 'RELATIONSHIP')).toBe(true);

    const rook = await startChat(t, user.token, personas.rook as string);
    const turn = await send(
      t,
      user.token,
      rook.sessionId,
      'Remember our jokes about puns? And my carpentry work?',
    );
    expect(turn.recalled.relationship).toEqual([]);
    expect(turn.recalled.profile.map((r) => r.memory.content).join(' ')).toMatch(/carpenter/i);

    const back = await send(t, user.token, mira.sessionId, 'Remember our jokes about puns?');
    expect(back.recalled.relationship.map((r) => r.memory.content).join(' ')).toMatch(/puns/i);
  });

  it('retrying sendMessage with the same clientMessageId creates one turn', async () => {
    const user = await t.newUser();
    const personas = await personaIds(t, user.token);
    const { sessionId } = await startChat(t, user.token, personas.rook as string);
    const a = await send(t, user.token, sessionId, 'I love climbing', 'retry-1');
    const b = await send(t, user.token, sessionId, 'I love climbing', 'retry-1');
    expect(b).toEqual(a);
    // Two concurrent retries race to the same single turn too.
    const [c, d] = await Promise.all([
      send(t, user.token, sessionId, 'I hate mornings', 'retry-2'),
      send(t, user.token, sessionId, 'I hate mornings', 'retry-2'),
    ]);
    expect(c.reply.id).toBe(d.reply.id);
    expect(c.userMessage.id).toBe(d.userMessage.id);

    const prisma = t.services.prisma;
    expect(await prisma.message.count({ where: { userId: user.id } })).toBe(4);
    expect(await prisma.job.count({ where: { userId: user.id } })).toBe(2);

    const reused = await t.gql(
      `mutation($s: ID!) { sendMessage(input: {sessionId: $s, content: "something else", clientMessageId: "retry-1"}) { reply { id } } }`,
      { s: sessionId },
      user.token,
    );
    expect(reused.errors?.[0]?.extensions?.code).toBe('CONFLICT');
  });
});
