import { afterAll, beforeAll, expect, it } from 'vitest';
import { codesOf, createTestContext, dataOf, type TestContext } from './helpers/app.js';
import { personaIds, startChat } from './helpers/chat.js';

/**
 * rememberMemory takes the extraction write path: guard, duplicate check, supersede, write rate,
 * history (with the actor), and it publishes the same events.
 */
const REMEMBER = /* GraphQL */ `
  mutation Remember($input: RememberMemoryInput!) {
    rememberMemory(input: $input) {
      duplicate
      memory { id content layer category superseded history { edges { node { action actorType } } } }
    }
  }
`;

interface Remembered {
  rememberMemory: {
    duplicate: boolean;
    memory: {
      id: string;
      content: string;
      layer: string;
      category: string;
      superseded: boolean;
      history: { edges: { node: { action: string; actorType: string } }[] };
    } | null;
  };
}

let t: TestContext;
beforeAll(async () => {
  t = await createTestContext({ env: { MEMORY_WRITES_PER_MINUTE: '3' } });
});
afterAll(() => t?.close());

it('adds to either layer, drops duplicates, supersedes, audits and publishes', async () => {
  const user = await t.newUser();
  const { mira } = await personaIds(t, user.token);
  const { instanceId } = await startChat(t, user.token, mira as string);
  const events = await t.services.memoryEvents.subscribe(user.id);

  const profile = dataOf(
    await t.gql<Remembered>(
      REMEMBER,
      { input: { layer: 'PROFILE', content: '  Lives in   Porto ', category: 'FACT' } },
      user.token,
    ),
  ).rememberMemory;
  expect(profile).toMatchObject({
    duplicate: false,
    memory: { content: 'Lives in Porto', layer: 'PROFILE', category: 'FACT' },
  });
  expect(profile.memory?.history.edges.map((e) => e.node)).toEqual([
    { action: 'ADDED', actorType: 'user' },
  ]);
  expect((await events.next()).value).toMatchObject({ kind: 'ADDED', instanceId: null });

  const again = dataOf(
    await t.gql<Remembered>(
      REMEMBER,
      { input: { layer: 'PROFILE', content: 'Lives in Porto' } },
      user.token,
    ),
  ).rememberMemory;
  expect(again).toMatchObject({ duplicate: true, memory: { id: profile.memory?.id } });

  const moved = dataOf(
    await t.gql<Remembered>(
      REMEMBER,
      {
        input: {
          layer: 'PROFILE',
          content: 'Moved to Lisbon in May',
          supersedes: profile.memory?.id,
        },
      },
      user.token,
    ),
  ).rememberMemory;
  expect(moved.memory?.content).toBe('Moved to Lisbon in May');
  expect((await events.next()).value).toMatchObject({ kind: 'ADDED' });
  expect((await events.next()).value).toMatchObject({ kind: 'SUPERSEDED' });
  const old = await t.services.prisma.memory.findFirstOrThrow({
    where: { content: 'Lives in Porto' },
  });
  expect(old.supersededById).not.toBeNull();

  const relationship = dataOf(
    await t.gql<Remembered>(
      REMEMBER,
      { input: { layer: 'RELATIONSHIP', instanceId, content: 'Calls Mira "captain"' } },
      user.token,
    ),
  ).rememberMemory;
  expect(relationship.memory?.layer).toBe('RELATIONSHIP');
  await events.return?.();

  // MEMORY_WRITES_PER_MINUTE is 3, counted with the worker's writes: the fourth is refused.
  const over = await t.gql(
    REMEMBER,
    { input: { layer: 'PROFILE', content: 'Has a cat' } },
    user.token,
  );
  expect(codesOf(over)).toEqual(['RATE_LIMITED']);
});

it('refuses bad input, and other users to anyone but an admin', async () => {
  const owner = await t.newUser();
  const stranger = await t.newUser();
  const admin = await t.newUser({ admin: true });
  const { mira } = await personaIds(t, owner.token);
  const { instanceId } = await startChat(t, owner.token, mira as string);
  const cases: [Record<string, unknown>, string, string][] = [
    [{ layer: 'PROFILE', content: '   ' }, owner.token, 'BAD_USER_INPUT'],
    [
      { layer: 'PROFILE', content: 'x'.repeat(t.env.MEMORY_MAX_CHARS + 1) },
      owner.token,
      'BAD_USER_INPUT',
    ],
    [{ layer: 'RELATIONSHIP', content: 'No instance' }, owner.token, 'BAD_USER_INPUT'],
    [{ layer: 'PROFILE', instanceId, content: 'Both' }, owner.token, 'BAD_USER_INPUT'],
    [{ layer: 'RELATIONSHIP', instanceId, content: 'Not mine' }, stranger.token, 'NOT_FOUND'],
    [{ layer: 'PROFILE', userId: owner.id, content: 'Not mine' }, stranger.token, 'NOT_FOUND'],
  ];
  for (const [input, token, code] of cases) {
    expect(codesOf(await t.gql(REMEMBER, { input }, token)), JSON.stringify(input)).toEqual([code]);
  }
  expect(await t.services.prisma.memory.count({ where: { userId: owner.id } })).toBe(0);

  const byAdmin = dataOf(
    await t.gql<Remembered>(
      REMEMBER,
      { input: { layer: 'RELATIONSHIP', instanceId, content: 'Prefers mornings' } },
      admin.token,
    ),
  ).rememberMemory;
  expect(byAdmin.memory?.history.edges[0]?.node).toEqual({ action: 'ADDED', actorType: 'admin' });
});
