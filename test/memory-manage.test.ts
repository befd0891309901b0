import { PGlite } from '@electric-sql/pglite';
import { decodeGlobalID, encodeGlobalID } from '@pothos/plugin-relay';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { contentHash, supersedeMemory, toVectorLiteral } from '../src/memory/store.js';
import { codesOf, createTestContext, dataOf, type TestContext } from './helpers/app.js';
import { personaIds, send, startChat } from './helpers/chat.js';

/**
 * Issue 4: people manage their memories through the API. Owners and admins read, edit, delete,
 * forget and export; strangers get NOT_FOUND (FORBIDDEN where a userId argument is admin-only,
 * and on memory(id), which mirrors node(id)); every write leaves history naming its actor. The
 * memories are real ones: turns sent through sendMessage, extracted by the worker.
 */
let t: TestContext;
let personas: Record<string, string>;
let admin: { id: string; token: string };
let stranger: Owner;

interface Owner {
  id: string;
  token: string;
  /** Global ids of the user's two persona instances. */
  mira: string;
  rook: string;
}

interface Node {
  id: string;
  content: string;
  category: string;
  layer: string;
}

/** A user with memories in both layers and two persona instances, written by the worker. */
async function ownerWithMemories(): Promise<Owner> {
  const user = await t.newUser();
  const mira = await startChat(t, user.token, personas.mira as string);
  const rook = await startChat(t, user.token, personas.rook as string);
  await send(
    t,
    user.token,
    mira.sessionId,
    "I'm a nurse from Lisbon and I love hiking. We laughed about your terrible puns.",
  );
  await send(
    t,
    user.token,
    rook.sessionId,
    'My cat is called Miso. You promised to teach me chess.',
  );
  await t.drainJobs();
  return { ...user, mira: mira.instanceId, rook: rook.instanceId };
}

const raw = (globalId: string) => decodeGlobalID(globalId).id;

const LIST = /* GraphQL */ `
  query List($instanceId: ID!) {
    profileMemories(first: 100) { edges { node { id content category layer } } }
    relationshipMemories(instanceId: $instanceId, first: 100) {
      edges { node { id content category layer } }
    }
  }`;

async function listed(user: Owner, instance: 'mira' | 'rook' = 'mira') {
  type Page = { edges: { node: Node }[] };
  const data = dataOf(
    await t.gql<{ profileMemories: Page; relationshipMemories: Page }>(
      LIST,
      { instanceId: user[instance] },
      user.token,
    ),
  );
  return {
    profile: data.profileMemories.edges.map((e) => e.node),
    relationship: data.relationshipMemories.edges.map((e) => e.node),
  };
}

async function first(user: Owner, layer: 'profile' | 'relationship'): Promise<Node> {
  const node = (await listed(user))[layer][0];
  if (!node) throw new Error(`no ${layer} memory`);
  return node;
}

const MEMORY = /* GraphQL */ `
  query Memory($id: ID!) {
    memory(id: $id) {
      id content category layer superseded
      instance { id }
      sourceMessage { id role content }
      supersededBy { id content }
      history(first: 10) {
        edges { cursor node { id action oldContent newContent actorType createdAt } }
        pageInfo { hasNextPage endCursor }
      }
    }
  }`;

interface HistoryNode {
  id: string;
  action: string;
  oldContent: string | null;
  newContent: string | null;
  actorType: string;
}

interface MemoryData {
  memory: {
    id: string;
    content: string;
    category: string;
    layer: string;
    superseded: boolean;
    instance: { id: string } | null;
    sourceMessage: { id: string; role: string; content: string } | null;
    supersededBy: { id: string; content: string } | null;
    history: { edges: { cursor: string; node: HistoryNode }[]; pageInfo: { hasNextPage: boolean } };
  } | null;
}

const memoryAs = (id: string, token?: string) => t.gql<MemoryData>(MEMORY, { id }, token);

async function readMemory(id: string, token: string) {
  const memory = dataOf(await memoryAs(id, token)).memory;
  if (!memory) throw new Error(`memory ${id} not found`);
  return memory;
}

const UPDATE = /* GraphQL */ `
  mutation Update($input: UpdateMemoryInput!) {
    updateMemory(input: $input) { memory { id content category layer } }
  }`;
const DELETE = /* GraphQL */ `
  mutation Delete($memoryId: ID!) { deleteMemory(input: { memoryId: $memoryId }) { deletedMemoryId } }`;
const FORGET = /* GraphQL */ `
  mutation Forget($input: ForgetMemoriesInput!) { forgetMemories(input: $input) { deletedCount } }`;
const EXPORT = /* GraphQL */ `
  query Export($userId: ID) { exportMemories(userId: $userId) }`;

type UpdateData = { updateMemory: { memory: Node } };

const db = () => t.services.prisma;

beforeAll(async () => {
  t = await createTestContext();
  admin = await t.newUser({ admin: true });
  personas = await personaIds(t, admin.token);
  stranger = await ownerWithMemories();
});
afterAll(() => t?.close());

describe('memory(id) and the hops from a memory', () => {
  let owner: Owner;
  beforeAll(async () => {
    owner = await ownerWithMemories();
  });

  it('shows the owner its history, source message and persona instance', async () => {
    const { profile, relationship } = await listed(owner);
    expect(profile.map((m) => m.content).sort()).toEqual([
      'User is a nurse from Lisbon',
      'User loves hiking',
      "User's cat is called Miso",
    ]);
    const rel = await readMemory(relationship[0]?.id as string, owner.token);
    expect(rel.instance?.id).toBe(owner.mira);
    expect(rel.sourceMessage).toMatchObject({
      role: 'USER',
      content: expect.stringContaining('terrible puns'),
    });
    expect(rel.supersededBy).toBeNull();
    expect(rel.history.edges.map((e) => e.node)).toEqual([
      expect.objectContaining({
        action: 'ADDED',
        oldContent: null,
        newContent: rel.content,
        actorType: 'worker',
      }),
    ]);
    const nurse = profile.find((m) => m.content.includes('nurse'));
    const prof = await readMemory(nurse?.id as string, owner.token);
    expect(prof.layer).toBe('PROFILE');
    expect(prof.instance).toBeNull();
    expect(prof.sourceMessage?.id).toBe(rel.sourceMessage?.id);
  });

  it('answers a stranger like a missing memory: null, no error; admins read it', async () => {
    const { id } = await first(owner, 'profile');
    const res = await memoryAs(id, stranger.token);
    expect(res).toEqual({ data: { memory: null } });
    expect((await readMemory(id, admin.token)).id).toBe(id);
    expect(codesOf(await memoryAs(id))).toEqual(['UNAUTHENTICATED']);
  });

  it('is null for an unknown memory and BAD_USER_INPUT for another type of id', async () => {
    const unknown = encodeGlobalID('Memory', '00000000-0000-4000-8000-000000000000');
    expect(dataOf(await memoryAs(unknown, owner.token)).memory).toBeNull();
    expect(codesOf(await memoryAs(owner.mira, owner.token))).toEqual(['BAD_USER_INPUT']);
  });

  it('pages history newest first with a keyset cursor', async () => {
    const { id } = await first(owner, 'profile');
    for (const category of ['EVENT', 'EMOTION', 'FACT']) {
      dataOf(await t.gql(UPDATE, { input: { memoryId: id, category } }, owner.token));
    }
    const PAGE = /* GraphQL */ `
      query Page($id: ID!, $after: String) {
        memory(id: $id) {
          history(first: 2, after: $after) {
            edges { cursor node { action } }
            pageInfo { hasNextPage endCursor }
          }
        }
      }`;
    type Page = {
      memory: {
        history: {
          edges: { node: { action: string } }[];
          pageInfo: { hasNextPage: boolean; endCursor: string };
        };
      };
    };
    const one = dataOf(await t.gql<Page>(PAGE, { id }, owner.token)).memory.history;
    expect(one.edges.map((e) => e.node.action)).toEqual(['UPDATED', 'UPDATED']);
    expect(one.pageInfo.hasNextPage).toBe(true);
    const two = dataOf(await t.gql<Page>(PAGE, { id, after: one.pageInfo.endCursor }, owner.token))
      .memory.history;
    expect(two.edges.map((e) => e.node.action)).toEqual(['UPDATED', 'ADDED']);
    expect(two.pageInfo.hasNextPage).toBe(false);
    const bad = await t.gql(
      `query($id: ID!) { memory(id: $id) { history(first: 101) { edges { cursor } } } }`,
      { id },
      owner.token,
    );
    expect(codesOf(bad)).toEqual(['BAD_USER_INPUT']);
  });
});

describe('updateMemory', () => {
  let owner: Owner;
  beforeAll(async () => {
    owner = await ownerWithMemories();
  });

  it('re-embeds new content and records the change as the user', async () => {
    const target = await first(owner, 'profile');
    const content = '  User is a  paediatric nurse in Lisbon ';
    const res = dataOf(
      await t.gql<UpdateData>(UPDATE, { input: { memoryId: target.id, content } }, owner.token),
    );
    expect(res.updateMemory.memory).toMatchObject({
      id: target.id,
      content: 'User is a paediatric nurse in Lisbon',
      layer: 'PROFILE',
    });

    const [vector] = await t.services.embedder.embed(
      ['User is a paediatric nurse in Lisbon'],
      'document',
    );
    const [row] = await db().$queryRaw<{ hash: string; model: string; similarity: number }[]>`
      SELECT content_hash AS hash, embedding_model AS model,
        1 - (embedding <=> ${toVectorLiteral(vector ?? [])}::vector) AS similarity
      FROM memories WHERE id = ${raw(target.id)}::uuid`;
    expect(row?.hash).toBe(contentHash('User is a paediatric nurse in Lisbon'));
    expect(row?.model).toBe(t.services.embedder.model);
    expect(Number(row?.similarity)).toBeGreaterThan(0.9999);

    const memory = await readMemory(target.id, owner.token);
    expect(memory.history.edges[0]?.node).toMatchObject({
      action: 'UPDATED',
      oldContent: target.content,
      newContent: 'User is a paediatric nurse in Lisbon',
      actorType: 'user',
    });
  });

  it('changes only the category without touching the vector', async () => {
    const target = await first(owner, 'relationship');
    const before = await db().$queryRaw<{ v: string }[]>`
      SELECT embedding::text AS v FROM memories WHERE id = ${raw(target.id)}::uuid`;
    const res = dataOf(
      await t.gql<UpdateData>(
        UPDATE,
        { input: { memoryId: target.id, category: 'EMOTION' } },
        owner.token,
      ),
    );
    expect(res.updateMemory.memory).toMatchObject({ content: target.content, category: 'EMOTION' });
    const after = await db().$queryRaw<{ v: string }[]>`
      SELECT embedding::text AS v FROM memories WHERE id = ${raw(target.id)}::uuid`;
    expect(after).toEqual(before);
    const history = (await readMemory(target.id, owner.token)).history.edges.map((e) => e.node);
    expect(history.map((h) => h.action)).toEqual(['UPDATED', 'ADDED']);
  });

  it('rejects blank, over-long and empty edits and changes nothing', async () => {
    const target = await first(owner, 'profile');
    const max = t.services.config.memoryMaxChars;
    for (const input of [
      { memoryId: target.id, content: '   ' },
      { memoryId: target.id, content: 'x'.repeat(max + 1) },
      { memoryId: target.id },
    ]) {
      const res = await t.gql(UPDATE, { input }, owner.token);
      expect(res.data ?? null, JSON.stringify(input).slice(0, 60)).toBeNull();
      expect(codesOf(res)).toEqual(['BAD_USER_INPUT']);
    }
    expect((await readMemory(target.id, owner.token)).content).toBe(target.content);
  });

  it('is CONFLICT when another live memory of the layer says the same; other layers are free', async () => {
    const { profile, relationship } = await listed(owner);
    const [a, b] = profile;
    if (!a || !b) throw new Error('need two profile memories');
    const res = await t.gql(
      UPDATE,
      { input: { memoryId: a.id, content: `${b.content.toUpperCase()}!` } },
      owner.token,
    );
    expect(codesOf(res)).toEqual(['CONFLICT']);
    const rel = relationship[0] as Node;
    const ok = dataOf(
      await t.gql<UpdateData>(
        UPDATE,
        { input: { memoryId: rel.id, content: b.content } },
        owner.token,
      ),
    );
    expect(ok.updateMemory.memory).toMatchObject({ content: b.content, layer: 'RELATIONSHIP' });
  });

  it('is CONFLICT on a superseded memory, which points to its successor', async () => {
    const [older, newer] = (await listed(owner)).profile;
    if (!older || !newer) throw new Error('need two profile memories');
    await supersedeMemory(
      db(),
      { userId: owner.id, instanceId: null },
      raw(older.id),
      raw(newer.id),
    );
    const res = await t.gql(UPDATE, { input: { memoryId: older.id, content: 'New' } }, owner.token);
    expect(codesOf(res)).toEqual(['CONFLICT']);
    const memory = await readMemory(older.id, owner.token);
    expect(memory.superseded).toBe(true);
    expect(memory.supersededBy).toEqual({ id: newer.id, content: newer.content });
  });

  it('is NOT_FOUND to a stranger (existing or not), UNAUTHENTICATED anonymously', async () => {
    const target = await first(owner, 'relationship');
    const unknown = encodeGlobalID('Memory', '00000000-0000-4000-8000-000000000000');
    for (const memoryId of [target.id, unknown]) {
      const res = await t.gql(UPDATE, { input: { memoryId, content: 'Hijacked' } }, stranger.token);
      expect(res.data ?? null).toBeNull();
      expect(codesOf(res)).toEqual(['NOT_FOUND']);
    }
    expect(codesOf(await t.gql(UPDATE, { input: { memoryId: target.id, content: 'x' } }))).toEqual([
      'UNAUTHENTICATED',
    ]);
    expect((await readMemory(target.id, owner.token)).content).toBe(target.content);
  });

  it("lets an admin edit anyone's memory, audited as admin with the admin's id", async () => {
    const target = await first(owner, 'relationship');
    const res = dataOf(
      await t.gql<UpdateData>(
        UPDATE,
        { input: { memoryId: target.id, content: 'User and Mira share a love of bad puns' } },
        admin.token,
      ),
    );
    expect(res.updateMemory.memory.content).toBe('User and Mira share a love of bad puns');
    const [audit] = await db().memoryHistory.findMany({
      where: { memoryId: raw(target.id) },
      orderBy: { createdAt: 'desc' },
      take: 1,
    });
    expect(audit).toMatchObject({ action: 'UPDATED', actorType: 'admin', actorId: admin.id });
  });
});

describe('deleteMemory', () => {
  let owner: Owner;
  beforeAll(async () => {
    owner = await ownerWithMemories();
  });

  it('is NOT_FOUND to a stranger and deletes nothing', async () => {
    const target = await first(owner, 'profile');
    const res = await t.gql(DELETE, { memoryId: target.id }, stranger.token);
    expect(res.data ?? null).toBeNull();
    expect(codesOf(res)).toEqual(['NOT_FOUND']);
    expect((await readMemory(target.id, owner.token)).id).toBe(target.id);
  });

  it('deletes for the owner and keeps a DELETED history row with the text', async () => {
    const target = await first(owner, 'profile');
    const res = dataOf(
      await t.gql<{ deleteMemory: { deletedMemoryId: string } }>(
        DELETE,
        { memoryId: target.id },
        owner.token,
      ),
    );
    expect(res.deleteMemory.deletedMemoryId).toBe(target.id);
    expect(dataOf(await memoryAs(target.id, owner.token)).memory).toBeNull();
    const history = await db().memoryHistory.findMany({
      where: { memoryId: raw(target.id) },
      orderBy: { createdAt: 'asc' },
    });
    expect(history.map((h) => [h.action, h.actorType])).toEqual([
      ['ADDED', 'worker'],
      ['DELETED', 'user'],
    ]);
    expect(history[1]).toMatchObject({ oldContent: target.content, newContent: null });
    expect(codesOf(await t.gql(DELETE, { memoryId: target.id }, owner.token))).toEqual([
      'NOT_FOUND',
    ]);
  });

  it('lets an admin delete, audited as admin', async () => {
    const target = await first(owner, 'relationship');
    dataOf(await t.gql(DELETE, { memoryId: target.id }, admin.token));
    const deleted = await db().memoryHistory.findFirst({
      where: { memoryId: raw(target.id), action: 'DELETED' },
    });
    expect(deleted).toMatchObject({ actorType: 'admin', actorId: admin.id });
  });
});

/** Everything of one user in the two memory tables, for before/after comparisons. */
async function footprint(userId: string) {
  const memories = await db().$queryRaw<{ id: string; content: string; v: string | null }[]>`
    SELECT id, content, embedding::text AS v FROM memories WHERE user_id = ${userId}::uuid
    ORDER BY id`;
  const history = await db().memoryHistory.findMany({ where: { userId }, orderBy: { id: 'asc' } });
  return { memories, history };
}

describe('forgetMemories', () => {
  it('forgets one layer: its rows go and its history loses its text; the other layer stays', async () => {
    const owner = await ownerWithMemories();
    const before = await listed(owner);
    const res = dataOf(
      await t.gql<{ forgetMemories: { deletedCount: number } }>(
        FORGET,
        { input: { layer: 'PROFILE' } },
        owner.token,
      ),
    );
    expect(res.forgetMemories.deletedCount).toBe(before.profile.length);
    const after = await listed(owner);
    expect(after.profile).toEqual([]);
    expect(after.relationship).toEqual(before.relationship);

    const history = await db().memoryHistory.findMany({ where: { userId: owner.id } });
    const profile = history.filter((h) => h.instanceId === null);
    expect(profile.every((h) => h.oldContent === null && h.newContent === null)).toBe(true);
    expect(profile.filter((h) => h.action === 'DELETED')).toHaveLength(before.profile.length);
    const relationship = history.filter((h) => h.instanceId !== null);
    expect(relationship.every((h) => h.newContent !== null)).toBe(true);
  });

  it("forgets one persona instance's relationship memories only", async () => {
    const owner = await ownerWithMemories();
    const mira = await listed(owner, 'mira');
    const rook = await listed(owner, 'rook');
    const res = dataOf(
      await t.gql<{ forgetMemories: { deletedCount: number } }>(
        FORGET,
        { input: { instanceId: owner.rook } },
        owner.token,
      ),
    );
    expect(res.forgetMemories.deletedCount).toBe(rook.relationship.length);
    expect(await listed(owner, 'rook')).toEqual({ ...rook, relationship: [] });
    expect(await listed(owner, 'mira')).toEqual(mira);
  });

  it('refuses a profile layer of an instance, strangers and other users', async () => {
    const owner = await ownerWithMemories();
    const before = await footprint(owner.id);
    const contradiction = await t.gql(
      FORGET,
      { input: { layer: 'PROFILE', instanceId: owner.mira } },
      owner.token,
    );
    expect(codesOf(contradiction)).toEqual(['BAD_USER_INPUT']);
    const byInstance = await t.gql(FORGET, { input: { instanceId: owner.mira } }, stranger.token);
    expect(codesOf(byInstance)).toEqual(['NOT_FOUND']);
    const byUser = await t.gql(FORGET, { input: { userId: owner.id } }, stranger.token);
    expect(codesOf(byUser)).toEqual(['FORBIDDEN']);
    expect(codesOf(await t.gql(FORGET, { input: {} }))).toEqual(['UNAUTHENTICATED']);
    expect(await footprint(owner.id)).toEqual(before);
  });

  it('forgets everything of a user for an admin: no row, vector or history text remains', async () => {
    const owner = await ownerWithMemories();
    const bystander = await footprint(stranger.id);
    expect(bystander.memories.length).toBeGreaterThan(0);
    const { memories } = await footprint(owner.id);
    const res = dataOf(
      await t.gql<{ forgetMemories: { deletedCount: number } }>(
        FORGET,
        { input: { userId: encodeGlobalID('User', owner.id), everything: true } },
        admin.token,
      ),
    );
    expect(res.forgetMemories.deletedCount).toBe(memories.length);

    const [left] = await db().$queryRaw<{ rows: number; vectors: number; texts: number }[]>`
      SELECT (SELECT count(*)::int FROM memories WHERE user_id = ${owner.id}::uuid) AS rows,
        (SELECT count(embedding)::int FROM memories WHERE user_id = ${owner.id}::uuid) AS vectors,
        (SELECT count(*)::int FROM memory_history WHERE user_id = ${owner.id}::uuid
          AND (old_content IS NOT NULL OR new_content IS NOT NULL)) AS texts`;
    expect(left).toEqual({ rows: 0, vectors: 0, texts: 0 });
    const deleted = await db().memoryHistory.findMany({
      where: { userId: owner.id, action: 'DELETED' },
    });
    expect(deleted).toHaveLength(memories.length);
    expect(deleted.every((h) => h.actorType === 'admin' && h.actorId === admin.id)).toBe(true);
    expect(await footprint(stranger.id)).toEqual(bystander);
  });

  it('erases everything only when asked in so many words', async () => {
    const owner = await ownerWithMemories();
    const before = await footprint(owner.id);
    // A client whose instanceId came out undefined sends {}: that must not wipe the user.
    for (const input of [{}, { userId: null }, { everything: false }]) {
      const res = await t.gql(FORGET, { input }, owner.token);
      expect(codesOf(res), JSON.stringify(input)).toEqual(['BAD_USER_INPUT']);
    }
    const mixed = await t.gql(
      FORGET,
      { input: { everything: true, layer: 'PROFILE' } },
      owner.token,
    );
    expect(codesOf(mixed)).toEqual(['BAD_USER_INPUT']);
    expect(await footprint(owner.id)).toEqual(before);
  });

  it('cancels extraction still queued, so an erasure is not undone by an earlier turn', async () => {
    const owner = await ownerWithMemories();
    const chat = await startChat(t, owner.token, personas.mira as string);
    await send(t, owner.token, chat.sessionId, 'I play the cello in an orchestra.');
    dataOf(await t.gql(FORGET, { input: { everything: true } }, owner.token));
    await t.drainJobs();
    expect(await footprint(owner.id).then((f) => f.memories)).toEqual([]);
    const actors = await db().memoryHistory.findMany({
      where: { userId: owner.id, action: 'DELETED' },
      select: { actorType: true },
    });
    expect(new Set(actors.map((a) => a.actorType))).toEqual(new Set(['user']));
  });
});

describe('exportMemories', () => {
  interface ExportedHistory {
    id: string;
    action: string;
    oldContent: string | null;
    newContent: string | null;
  }
  interface ExportedMemory {
    id: string;
    content: string;
    supersededBy: string | null;
    history: ExportedHistory[];
  }
  interface Export {
    user: { id: string };
    profile: ExportedMemory[];
    relationships: { instanceId: string; memories: ExportedMemory[] }[];
    deletedMemories: { memoryId: string; history: ExportedHistory[] }[];
  }

  it('round-trips: every memory and history row, with the content the API lists', async () => {
    const owner = await ownerWithMemories();
    const { profile } = await listed(owner);
    // Give it some history: an edit, a supersede and a delete.
    const [edited, superseded] = profile;
    if (!edited || !superseded) throw new Error('need two profile memories');
    dataOf(
      await t.gql(
        UPDATE,
        { input: { memoryId: edited.id, content: 'User is a nurse' } },
        owner.token,
      ),
    );
    const scope = { userId: owner.id, instanceId: null };
    await supersedeMemory(db(), scope, raw(superseded.id), raw(edited.id));
    const gone = (await listed(owner, 'rook')).relationship[0] as Node;
    dataOf(await t.gql(DELETE, { memoryId: gone.id }, owner.token));

    const doc = dataOf(
      await t.gql<{ exportMemories: Export }>(EXPORT, {}, owner.token),
    ).exportMemories;
    expect(doc.user.id).toBe(owner.id);
    const exported = [...doc.profile, ...doc.relationships.flatMap((r) => r.memories)];
    const rows = await db().memory.findMany({ where: { userId: owner.id } });
    expect(exported.map((m) => m.id).sort()).toEqual(rows.map((r) => r.id).sort());
    const historyIds = [
      ...exported.flatMap((m) => m.history),
      ...doc.deletedMemories.flatMap((d) => d.history),
    ].map((h) => h.id);
    const history = await db().memoryHistory.findMany({ where: { userId: owner.id } });
    expect(historyIds.sort()).toEqual(history.map((h) => h.id).sort());
    expect(doc.deletedMemories.map((d) => d.memoryId)).toEqual([raw(gone.id)]);

    // Content equals what the API lists, layer by layer, history included.
    const now = await listed(owner);
    const live = (list: ExportedMemory[]) =>
      list.filter((m) => m.supersededBy === null).map((m) => [m.id, m.content]);
    const api = (list: Node[]) => list.map((m) => [raw(m.id), m.content]);
    expect(live(doc.profile).sort()).toEqual(api(now.profile).sort());
    const mira = doc.relationships.find((r) => r.instanceId === raw(owner.mira));
    expect(live(mira?.memories ?? []).sort()).toEqual(api(now.relationship).sort());
    const rookDoc = doc.relationships.find((r) => r.instanceId === raw(owner.rook));
    expect(rookDoc?.memories).toEqual([]);
    expect(doc.profile.find((m) => m.id === raw(superseded.id))?.supersededBy).toBe(raw(edited.id));
    for (const m of exported) {
      const viaApi = (await readMemory(encodeGlobalID('Memory', m.id), owner.token)).history;
      const asApi = viaApi.edges.map(({ node }) => ({
        id: node.id,
        action: node.action,
        oldContent: node.oldContent,
        newContent: node.newContent,
      }));
      const asExport = m.history.map(({ id, action, oldContent, newContent }) => ({
        id,
        action,
        oldContent,
        newContent,
      }));
      expect(asExport.reverse()).toEqual(asApi);
    }
  });

  it('is for the owner or an admin only', async () => {
    const owner = await ownerWithMemories();
    const denied = await t.gql(EXPORT, { userId: owner.id }, stranger.token);
    expect(denied.data ?? null).toBeNull();
    expect(codesOf(denied)).toEqual(['FORBIDDEN']);
    expect(codesOf(await t.gql(EXPORT, {}))).toEqual(['UNAUTHENTICATED']);

    const mine = dataOf(await t.gql<{ exportMemories: Export }>(EXPORT, {}, owner.token));
    const asAdmin = dataOf(
      await t.gql<{ exportMemories: Export }>(
        EXPORT,
        { userId: encodeGlobalID('User', owner.id) },
        admin.token,
      ),
    );
    expect({ ...asAdmin.exportMemories, exportedAt: null }).toEqual({
      ...mine.exportMemories,
      exportedAt: null,
    });
    const nobody = await t.gql(
      EXPORT,
      { userId: '00000000-0000-4000-8000-000000000000' },
      admin.token,
    );
    expect(codesOf(nobody)).toEqual(['NOT_FOUND']);
  });
});

/**
 * SQL statements sent while `work` runs, counted at the driver (PGlite, or pg on real Postgres)
 * under Prisma, so a batch of findUniques Prisma merges into one query counts once.
 */
async function countStatements(work: () => Promise<unknown>): Promise<number> {
  const spies = [vi.spyOn(PGlite.prototype, 'query'), vi.spyOn(pg.Client.prototype, 'query')];
  try {
    await work();
    return spies.reduce((n, spy) => n + spy.mock.calls.length, 0);
  } finally {
    for (const spy of spies) spy.mockRestore();
  }
}

describe('the hops from memories are batched (no N+1)', () => {
  const HOPS = /* GraphQL */ `
    fragment Hops on Memory {
      id
      instance { id persona { name } }
      sourceMessage { id content }
      supersededBy { id }
      history { edges { node { action actorType } } }
    }`;
  // One root field per request: two would resolve in ticks that merge differently from run to
  // run on a pooled connection, and the counts would compare timing, not batching.
  const PAGES = {
    profile: /* GraphQL */ `
      query Page($first: Int!) { list: profileMemories(first: $first) { edges { node { ...Hops } } } }
      ${HOPS}`,
    relationship: /* GraphQL */ `
      query Page($first: Int!, $instanceId: ID!) {
        list: relationshipMemories(instanceId: $instanceId, first: $first) {
          edges { node { ...Hops } }
        }
      }
      ${HOPS}`,
  };
  type Page = { list: { edges: unknown[] } };

  it('a page of many memories costs as many statements as a page of one', async () => {
    const owner = await ownerWithMemories();
    const chat = await startChat(t, owner.token, personas.mira as string);
    await send(
      t,
      owner.token,
      chat.sessionId,
      'I work night shifts. I love jazz. We talked about your favourite films. ' +
        'You told me about your garden. I hate mornings.',
    );
    await t.drainJobs();
    for (const [layer, query] of Object.entries(PAGES)) {
      const vars = (first: number) => ({ first, instanceId: owner.mira });
      let page: Page | undefined;
      const one = await countStatements(async () => {
        dataOf(await t.gql<Page>(query, vars(1), owner.token));
      });
      const many = await countStatements(async () => {
        page = dataOf(await t.gql<Page>(query, vars(50), owner.token));
      });
      expect(page?.list.edges.length, layer).toBeGreaterThanOrEqual(3);
      expect(many, layer).toBe(one);
    }
  });

  it('supersededBy loads every successor of a response in one statement', async () => {
    const owner = await ownerWithMemories();
    const [a, b, c] = (await listed(owner)).profile;
    if (!a || !b || !c) throw new Error('need three profile memories');
    const scope = { userId: owner.id, instanceId: null };
    await supersedeMemory(db(), scope, raw(a.id), raw(c.id));
    await supersedeMemory(db(), scope, raw(b.id), raw(c.id));
    const QUERY = (ids: string[]) =>
      `query { ${ids.map((id, i) => `m${i}: memory(id: "${id}") { supersededBy { id } }`).join(' ')} }`;
    const single = await countStatements(() => t.gql(QUERY([a.id]), {}, owner.token));
    let data: Record<string, { supersededBy: { id: string } }> | undefined;
    const both = await countStatements(async () => {
      data = dataOf(await t.gql<typeof data>(QUERY([a.id, b.id]), {}, owner.token));
    });
    expect(data).toEqual({
      m0: { supersededBy: { id: c.id } },
      m1: { supersededBy: { id: c.id } },
    });
    // At most the second alias's own root lookup (Prisma usually merges even that into the
    // first one); its successor joins the first alias's load.
    expect(both).toBeLessThanOrEqual(single + 1);
  });
});
