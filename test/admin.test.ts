import { randomUUID } from 'node:crypto';
import { decodeGlobalID, encodeGlobalID } from '@pothos/plugin-relay';
import type { MemoryCategory } from '@prisma/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MEMORY_CATEGORIES } from '../src/memory/types.js';
import { codesOf, createTestContext, dataOf, type TestContext } from './helpers/app.js';
import { personaIds, send, startChat } from './helpers/chat.js';
import { PERSONAS } from './helpers/operations.js';

let t: TestContext;
let admin: { id: string; token: string };
let owner: { id: string; token: string };
let stranger: { id: string; token: string };

const STATS = /* GraphQL */ `
  query Stats($userId: ID) {
    memoryStats(userId: $userId) {
      profile { ...layer }
      relationship { ...layer }
    }
  }
  fragment layer on MemoryLayerStats {
    layer total live superseded expired lastWriteAt
    byCategory { category count }
    byEmbeddingModel { model count }
  }`;

const PERSONA = /* GraphQL */ `
  fragment persona on Persona { id slug name description greeting archived systemPrompt traits }`;
const CREATE = /* GraphQL */ `
  mutation Create($input: CreatePersonaInput!) { createPersona(input: $input) { persona { ...persona } } }
  ${PERSONA}`;
const UPDATE = /* GraphQL */ `
  mutation Update($input: UpdatePersonaInput!) { updatePersona(input: $input) { persona { ...persona } } }
  ${PERSONA}`;
const ARCHIVE = /* GraphQL */ `
  mutation Archive($id: ID!) { archivePersona(input: { personaId: $id }) { persona { ...persona } } }
  ${PERSONA}`;
const UNARCHIVE = /* GraphQL */ `
  mutation Unarchive($id: ID!) { unarchivePersona(input: { personaId: $id }) { persona { ...persona } } }
  ${PERSONA}`;
const ALL_PERSONAS = /* GraphQL */ `
  query { allPersonas(first: 100) { edges { node { slug archived } } } }`;

interface PersonaData {
  id: string;
  slug: string;
  name: string;
  description: string;
  greeting: string;
  archived: boolean;
  systemPrompt: string | null;
  traits: unknown;
}

const newPersona = (slug: string) => ({
  slug,
  name: 'Night Owl',
  description: 'Up late, always.',
  greeting: 'Still awake?',
  systemPrompt: 'You are Night Owl, a calm companion for the small hours.',
  traits: { tone: 'calm', hobbies: ['stars', 'tea'] },
});

beforeAll(async () => {
  t = await createTestContext();
  admin = await t.newUser({ admin: true });
  owner = await t.newUser();
  stranger = await t.newUser();
});
afterAll(() => t?.close());

describe('memoryStats', () => {
  let instanceId: string;
  const old = (day: number) => new Date(Date.UTC(2024, 0, day));

  beforeAll(async () => {
    // Rows written directly, so every expected number is known: the pipeline's own writes are
    // covered by the chat tests.
    const prisma = t.services.prisma;
    await t.gql(PERSONAS, {}, owner.token);
    const personaId = (await prisma.persona.findFirstOrThrow({ where: { slug: 'mira' } })).id;
    instanceId = (await prisma.personaInstance.create({ data: { userId: owner.id, personaId } }))
      .id;
    const row = (
      layer: 'profile' | 'relationship',
      category: MemoryCategory,
      extra: { model?: string; superseded?: boolean; expired?: boolean; day?: number } = {},
    ) => ({
      userId: owner.id,
      instanceId: layer === 'profile' ? null : instanceId,
      content: randomUUID(),
      contentHash: randomUUID(),
      category,
      embeddingModel: extra.model ?? 'use-lite-512',
      supersededById: extra.superseded ? randomUUID() : null,
      expiresAt: extra.expired ? old(1) : null,
      createdAt: old(1),
      updatedAt: old(extra.day ?? 2),
    });
    await prisma.memory.createMany({
      data: [
        row('profile', 'FACT'),
        row('profile', 'FACT', { model: 'voyage-3-lite', day: 5 }),
        row('profile', 'PREFERENCE', { superseded: true }),
        row('profile', 'EVENT', { expired: true }),
        row('relationship', 'EMOTION', { day: 9 }),
        row('relationship', 'EMOTION', { superseded: true, model: 'voyage-3-lite' }),
        row('relationship', 'RELATION'),
      ],
    });
    // A profile memory deleted later than any row was written: only history remembers it.
    await prisma.memoryHistory.create({
      data: {
        memoryId: randomUUID(),
        userId: owner.id,
        action: 'DELETED',
        oldContent: 'gone',
        actorType: 'user',
        actorId: owner.id,
        createdAt: old(20),
      },
    });
  });

  const counts = (live: Partial<Record<MemoryCategory, number>>) =>
    MEMORY_CATEGORIES.map((category) => ({ category, count: live[category] ?? 0 }));

  it("gives an admin one user's numbers per layer", async () => {
    const expected = {
      profile: {
        layer: 'PROFILE',
        total: 4,
        live: 2,
        superseded: 1,
        expired: 1,
        lastWriteAt: old(20).toISOString(),
        byCategory: counts({ FACT: 2 }),
        byEmbeddingModel: [
          { model: 'use-lite-512', count: 3 },
          { model: 'voyage-3-lite', count: 1 },
        ],
      },
      relationship: {
        layer: 'RELATIONSHIP',
        total: 3,
        live: 2,
        superseded: 1,
        expired: 0,
        lastWriteAt: old(9).toISOString(),
        byCategory: counts({ EMOTION: 1, RELATION: 1 }),
        byEmbeddingModel: [
          { model: 'use-lite-512', count: 2 },
          { model: 'voyage-3-lite', count: 1 },
        ],
      },
    };
    // The user's global id and the raw UUID (token `sub`) name the same user.
    for (const userId of [encodeGlobalID('User', owner.id), owner.id]) {
      expect(dataOf(await t.gql(STATS, { userId }, admin.token))).toEqual({
        memoryStats: expected,
      });
    }
  });

  it('covers everyone without userId, and answers zeros for a user without memories', async () => {
    const all = dataOf(
      await t.gql<{ memoryStats: Record<string, { total: number }> }>(STATS, {}, admin.token),
    );
    expect(all.memoryStats.profile?.total).toBe(
      await t.services.prisma.memory.count({ where: { instanceId: null } }),
    );
    expect(all.memoryStats.relationship?.total).toBe(
      await t.services.prisma.memory.count({ where: { instanceId: { not: null } } }),
    );

    await t.gql(PERSONAS, {}, stranger.token); // provisions the user
    const empty = dataOf(
      await t.gql<{ memoryStats: unknown }>(STATS, { userId: stranger.id }, admin.token),
    );
    expect(empty.memoryStats).toMatchObject({
      profile: {
        total: 0,
        live: 0,
        lastWriteAt: null,
        byCategory: counts({}),
        byEmbeddingModel: [],
      },
    });
  });

  it('is NOT_FOUND for an unknown user and BAD_USER_INPUT for a malformed id', async () => {
    expect(codesOf(await t.gql(STATS, { userId: randomUUID() }, admin.token))).toEqual([
      'NOT_FOUND',
    ]);
    expect(codesOf(await t.gql(STATS, { userId: 'nope' }, admin.token))).toEqual([
      'BAD_USER_INPUT',
    ]);
  });

  it('is refused to the owner of the memories and to strangers', async () => {
    for (const who of [owner, stranger]) {
      for (const userId of [owner.id, undefined]) {
        const res = await t.gql(STATS, { userId }, who.token);
        expect(res.data ?? null).toBeNull();
        expect(codesOf(res)).toEqual(['FORBIDDEN']);
      }
    }
    expect(codesOf(await t.gql(STATS, { userId: owner.id }))).toEqual(['UNAUTHENTICATED']);
  });
});

describe('persona management', () => {
  it('an admin creates a persona users can chat with; its prompt stays admin-only', async () => {
    const created = dataOf(
      await t.gql<{ createPersona: { persona: PersonaData } }>(
        CREATE,
        { input: newPersona('night-owl') },
        admin.token,
      ),
    ).createPersona.persona;
    expect(created).toMatchObject({ ...newPersona('night-owl'), archived: false });

    const asUser = await t.gql<{ node: PersonaData }>(
      `query($id: ID!) { node(id: $id) { ...persona } } ${PERSONA}`,
      { id: created.id },
      owner.token,
    );
    expect(asUser.data?.node).toMatchObject({
      slug: 'night-owl',
      systemPrompt: null,
      traits: null,
    });
    expect(codesOf(asUser)).toEqual(['FORBIDDEN', 'FORBIDDEN']);

    const ids = await personaIds(t, owner.token);
    expect(ids['night-owl']).toBe(created.id);
    const chat = await startChat(t, owner.token, created.id);
    expect(chat.sessionId).toBeTruthy();
  });

  it('validates input like the import CLI, and refuses a taken slug', async () => {
    const bad: [Record<string, unknown>, string][] = [
      [{ slug: 'Not A Slug' }, 'slug'],
      [{ name: '   ' }, 'name'],
      [{ systemPrompt: 'x'.repeat(20_001) }, 'systemPrompt'],
      [{ traits: { blob: 'x'.repeat(10_001) } }, 'traits'],
    ];
    for (const [override, field] of bad) {
      const res = await t.gql(
        CREATE,
        { input: { ...newPersona('ok-slug'), ...override } },
        admin.token,
      );
      expect(codesOf(res), field).toEqual(['BAD_USER_INPUT']);
      expect(res.errors?.[0]?.extensions?.field, field).toBe(field);
    }
    const notObject = await t.gql(
      CREATE,
      { input: { ...newPersona('ok-slug'), traits: [1] } },
      admin.token,
    );
    expect(notObject.data ?? null).toBeNull();
    expect(notObject.errors?.[0]?.message).toMatch(/JSONObject/);

    await t.gql(CREATE, { input: newPersona('taken') }, admin.token);
    const dup = await t.gql(CREATE, { input: newPersona('taken') }, admin.token);
    expect(codesOf(dup)).toEqual(['CONFLICT']);
    expect(await t.services.prisma.persona.count({ where: { slug: 'ok-slug' } })).toBe(0);
  });

  it('updates only the given fields; traits are replaced as a whole', async () => {
    const { id } = dataOf(
      await t.gql<{ createPersona: { persona: PersonaData } }>(
        CREATE,
        { input: newPersona('editable') },
        admin.token,
      ),
    ).createPersona.persona;
    const updated = dataOf(
      await t.gql<{ updatePersona: { persona: PersonaData } }>(
        UPDATE,
        {
          input: { personaId: id, name: 'Early Bird', greeting: null, traits: { tone: 'bright' } },
        },
        admin.token,
      ),
    ).updatePersona.persona;
    expect(updated).toMatchObject({
      ...newPersona('editable'),
      name: 'Early Bird',
      traits: { tone: 'bright' },
    });

    expect(
      codesOf(await t.gql(UPDATE, { input: { personaId: id, name: '' } }, admin.token)),
    ).toEqual(['BAD_USER_INPUT']);
    const missing = encodeGlobalID('Persona', randomUUID());
    expect(
      codesOf(await t.gql(UPDATE, { input: { personaId: missing, name: 'x' } }, admin.token)),
    ).toEqual(['NOT_FOUND']);
    const wrongType = encodeGlobalID('Memory', randomUUID());
    expect(
      codesOf(await t.gql(UPDATE, { input: { personaId: wrongType, name: 'x' } }, admin.token)),
    ).toEqual(['BAD_USER_INPUT']);
  });

  it('archiving hides a persona from new chats but keeps existing chats and memories', async () => {
    const { id } = dataOf(
      await t.gql<{ createPersona: { persona: PersonaData } }>(
        CREATE,
        { input: newPersona('seasonal') },
        admin.token,
      ),
    ).createPersona.persona;
    const chat = await startChat(t, owner.token, id);
    await send(t, owner.token, chat.sessionId, 'I love winter swimming');
    await t.drainJobs();
    const memories = await t.services.prisma.memory.count({ where: { userId: owner.id } });
    const history = await t.services.prisma.memoryHistory.count();

    const archived = await t.gql<{ archivePersona: { persona: PersonaData } }>(
      ARCHIVE,
      { id },
      admin.token,
    );
    expect(dataOf(archived).archivePersona.persona.archived).toBe(true);
    const where = { id: decodeGlobalID(id).id };
    const first = await t.services.prisma.persona.findUniqueOrThrow({ where });
    dataOf(await t.gql(ARCHIVE, { id }, admin.token));
    const again = await t.services.prisma.persona.findUniqueOrThrow({ where });
    expect(again.archivedAt).toEqual(first.archivedAt);

    expect((await personaIds(t, owner.token)).seasonal).toBeUndefined();
    const start = await t.gql(
      'mutation($id: ID!) { startChat(input: { personaId: $id }) { session { id } } }',
      { id },
      owner.token,
    );
    expect(codesOf(start)).toEqual(['NOT_FOUND']);
    await send(t, owner.token, chat.sessionId, 'still here?');
    const all = dataOf(
      await t.gql<{ allPersonas: { edges: { node: { slug: string; archived: boolean } }[] } }>(
        ALL_PERSONAS,
        {},
        admin.token,
      ),
    );
    expect(all.allPersonas.edges.map((e) => e.node)).toContainEqual({
      slug: 'seasonal',
      archived: true,
    });
    // Persona writes touch no memory and write no memory history.
    expect(await t.services.prisma.memory.count({ where: { userId: owner.id } })).toBe(memories);
    expect(await t.services.prisma.memoryHistory.count()).toBe(history);

    const back = await t.gql<{ unarchivePersona: { persona: PersonaData } }>(
      UNARCHIVE,
      { id },
      admin.token,
    );
    expect(dataOf(back).unarchivePersona.persona.archived).toBe(false);
    expect((await personaIds(t, owner.token)).seasonal).toBe(id);
  });

  it('refuses every persona write and allPersonas to non-admins, writing nothing', async () => {
    const persona = await t.services.prisma.persona.findFirstOrThrow({ where: { slug: 'mira' } });
    const id = encodeGlobalID('Persona', persona.id);
    const operations: [string, Record<string, unknown>][] = [
      [CREATE, { input: newPersona('sneaky') }],
      [UPDATE, { input: { personaId: id, name: 'Hacked' } }],
      [ARCHIVE, { id }],
      [UNARCHIVE, { id }],
      [ALL_PERSONAS, {}],
    ];
    for (const who of [owner, stranger]) {
      for (const [query, variables] of operations) {
        const res = await t.gql(query, variables, who.token);
        expect(res.data ?? null).toBeNull();
        expect(codesOf(res)).toEqual(['FORBIDDEN']);
      }
    }
    expect(
      await t.services.prisma.persona.findUniqueOrThrow({ where: { id: persona.id } }),
    ).toEqual(persona);
    expect(await t.services.prisma.persona.count({ where: { slug: 'sneaky' } })).toBe(0);
  });
});
