import { randomUUID } from 'node:crypto';
import { Prisma, type PrismaClient } from '@prisma/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OfflineExtractor } from '../src/memory/extract-offline.js';
import type { ExtractionInput, MemoryCandidate, MemoryExtractor } from '../src/memory/types.js';
import { codesOf, createTestContext, dataOf, type TestContext } from './helpers/app.js';
import { personaIds, send, startChat } from './helpers/chat.js';

/**
 * Data rights: account erasure, chat session deletion, the export's chats, and a token whose
 * user is gone (issue 13, defect 2). Erasure is checked in SQL over every table, whatever
 * tables later migrations add: nothing of the erased user remains, nothing of the other user
 * is touched.
 */

/**
 * The offline extractor behind a gate: a test can hold one extraction mid-run (after the job
 * read its turn, before it writes) and act meanwhile. Deterministic: no timing involved.
 */
class GatedExtractor implements MemoryExtractor {
  readonly provider = 'offline';
  readonly #inner = new OfflineExtractor();
  #gate: { entered: () => void; release: Promise<void> } | null = null;

  /** Holds the next extraction; resolves `entered` once a job is inside it. */
  hold(): { entered: Promise<void>; release: () => void } {
    let entered!: () => void;
    let release!: () => void;
    const enteredP = new Promise<void>((r) => {
      entered = r;
    });
    const releaseP = new Promise<void>((r) => {
      release = r;
    });
    this.#gate = { entered, release: releaseP };
    return { entered: enteredP, release };
  }

  async extract(input: ExtractionInput): Promise<MemoryCandidate[]> {
    const gate = this.#gate;
    this.#gate = null;
    if (gate) {
      gate.entered();
      await gate.release;
    }
    return this.#inner.extract(input);
  }
}

const ERASE_ME = /* GraphQL */ `
  mutation Erase($confirmation: String!) {
    eraseMyAccount(input: { confirmation: $confirmation }) {
      userId erasedAt deleted { kind count }
    }
  }`;

const ERASE_USER = /* GraphQL */ `
  mutation EraseUser($userId: ID!) {
    eraseUser(input: { userId: $userId }) { userId deleted { kind count } }
  }`;

const DELETE_SESSION = /* GraphQL */ `
  mutation Delete($sessionId: ID!) {
    deleteChatSession(input: { sessionId: $sessionId }) {
      deletedSessionId deletedMessages unlinkedMemories
    }
  }`;

const KNOWN_TABLES = [
  'messages',
  'chat_sessions',
  'memories',
  'memory_history',
  'persona_instances',
  'jobs',
  'users',
];

interface Receipt {
  userId: string;
  deleted: { kind: string; count: number }[];
}

/** The row id inside a Relay global id ("Type:uuid", base64). */
const rawId = (globalId: string) => Buffer.from(globalId, 'base64').toString().split(':')[1] ?? '';

const ident = (name: string) => Prisma.raw(`"${name.replaceAll('"', '""')}"`);

async function publicTables(prisma: PrismaClient): Promise<string[]> {
  const rows = await prisma.$queryRaw<{ table_name: string }[]>`
    SELECT table_name::text AS table_name FROM information_schema.tables
    WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name`;
  return rows.map((r) => r.table_name);
}

/** Every public table with a user_id column, whichever migration added it. */
async function userTables(prisma: PrismaClient): Promise<string[]> {
  const rows = await prisma.$queryRaw<{ table_name: string }[]>`
    SELECT c.table_name::text AS table_name FROM information_schema.columns c
    JOIN information_schema.tables t
      ON t.table_schema = c.table_schema AND t.table_name = c.table_name
    WHERE c.table_schema = 'public' AND c.column_name = 'user_id' AND t.table_type = 'BASE TABLE'
    ORDER BY c.table_name`;
  return rows.map((r) => r.table_name);
}

/** Per table: the user's rows, as one fingerprint (count + md5 of the rows' text) each. */
async function rowsOf(prisma: PrismaClient, userId: string) {
  const out: Record<string, { count: number; digest: string | null }> = {};
  for (const table of await userTables(prisma)) {
    const [row] = await prisma.$queryRaw<{ count: bigint; digest: string | null }[]>`
      SELECT count(*) AS count, md5(string_agg(t::text, '|' ORDER BY t::text)) AS digest
      FROM ${ident(table)} t WHERE user_id = ${userId}::uuid`;
    out[table] = { count: Number(row?.count ?? 0), digest: row?.digest ?? null };
  }
  const [user] = await prisma.$queryRaw<{ count: bigint }[]>`
    SELECT count(*) AS count FROM users WHERE id = ${userId}::uuid`;
  out.users = { count: Number(user?.count ?? 0), digest: null };
  return out;
}

/** Rows of any public table whose text contains `needle` (an id or a marker word). */
async function tablesMentioning(prisma: PrismaClient, needle: string): Promise<string[]> {
  const found: string[] = [];
  for (const table of await publicTables(prisma)) {
    const [row] = await prisma.$queryRaw<{ n: bigint }[]>`
      SELECT count(*) AS n FROM ${ident(table)} t WHERE strpos(t::text, ${needle}) > 0`;
    if (Number(row?.n) > 0) found.push(table);
  }
  return found;
}

/** Job outcomes counted so far, copied (prom-client's values are live objects). */
async function jobOutcomes(): Promise<Record<string, number>> {
  const { values } = await t.services.metrics.jobOutcomes.get();
  return Object.fromEntries(values.map((v) => [String(v.labels.outcome), v.value]));
}

let t: TestContext;
let gated: GatedExtractor;
let prisma: PrismaClient;
let personas: Record<string, string>;

beforeAll(async () => {
  gated = new GatedExtractor();
  t = await createTestContext({ providers: { extractor: gated } });
  prisma = t.database.db.prisma;
  const probe = await t.newUser();
  personas = await personaIds(t, probe.token);
});
afterAll(async () => {
  await t?.close();
});

/** A user with two sessions, memories of both layers, history (an edit, a forget), a queued job. */
async function populate(marker: string) {
  const user = await t.newUser();
  const mira = await startChat(t, user.token, personas.mira ?? '');
  const rook = await startChat(t, user.token, personas.rook ?? '');
  await send(t, user.token, mira.sessionId, `I'm a nurse and I love ${marker} hiking`);
  await send(t, user.token, mira.sessionId, `We always laugh about your ${marker} puns`);
  await send(t, user.token, rook.sessionId, `My sister Ana is a ${marker} doctor`);
  await t.drainJobs();
  const forgot = await t.gql(
    `mutation F($id: ID!) { forgetMemories(input: { instanceId: $id }) { deletedCount } }`,
    { id: rook.instanceId },
    user.token,
  );
  dataOf(forgot);
  // One turn whose extraction is still queued.
  await send(t, user.token, rook.sessionId, `I grew up near the ${marker} sea`);
  return { ...user, mira, rook };
}

describe('account erasure', () => {
  it('needs the exact confirmation, and a signed-in user', async () => {
    const user = await t.newUser();
    for (const confirmation of ['', 'yes', 'erase my account', 'ERASE MY ACCOUNT ']) {
      const res = await t.gql(ERASE_ME, { confirmation }, user.token);
      expect(codesOf(res), confirmation).toEqual(['BAD_USER_INPUT']);
    }
    expect(codesOf(await t.gql(ERASE_ME, { confirmation: 'ERASE MY ACCOUNT' }))).toEqual([
      'UNAUTHENTICATED',
    ]);
  });

  it('deletes every row of the user in every table, counts them, and leaves others untouched', async () => {
    const marker = `zq${randomUUID().slice(0, 8)}`;
    const other = `zq${randomUUID().slice(0, 8)}`;
    const a = await populate(marker);
    const b = await populate(other);
    const before = await rowsOf(prisma, a.id);
    const othersBefore = await rowsOf(prisma, b.id);
    // The fixture reaches every table of this schema, so the checks below mean something
    // (a table added later is still checked, generically, just maybe with no rows).
    for (const table of KNOWN_TABLES) {
      expect(before[table]?.count, `rows of the user in ${table}`).toBeGreaterThan(0);
    }

    const res = await t.gql<{ eraseMyAccount: Receipt }>(
      ERASE_ME,
      { confirmation: 'ERASE MY ACCOUNT' },
      a.token,
    );
    const receipt = dataOf(res).eraseMyAccount;
    expect(receipt.userId).toBe(a.id);
    expect(Object.fromEntries(receipt.deleted.map((d) => [d.kind, d.count]))).toEqual(
      Object.fromEntries(Object.entries(before).map(([table, { count }]) => [table, count])),
    );

    const after = await rowsOf(prisma, a.id);
    for (const [table, { count }] of Object.entries(after)) {
      expect(count, `rows of the erased user left in ${table}`).toBe(0);
    }
    // Nothing anywhere still carries the user's id or words, in any table.
    expect(await tablesMentioning(prisma, a.id)).toEqual([]);
    expect(await tablesMentioning(prisma, marker)).toEqual([]);
    expect(await rowsOf(prisma, b.id)).toEqual(othersBefore);
    expect(await tablesMentioning(prisma, other)).not.toEqual([]);
    // The other user's queued job runs as usual and writes nothing of the erased one.
    await t.drainJobs();
    expect(Object.values(await rowsOf(prisma, a.id)).every((r) => r.count === 0)).toBe(true);
  });

  it('lets an admin erase any user; others may not; an unknown user is a no-op', async () => {
    const admin = await t.newUser({ admin: true });
    const victim = await populate(`zq${randomUUID().slice(0, 8)}`);
    const stranger = await t.newUser();
    const refused = await t.gql(ERASE_USER, { userId: victim.id }, stranger.token);
    expect(codesOf(refused)).toEqual(['FORBIDDEN']);
    expect((await rowsOf(prisma, victim.id)).users?.count).toBe(1);

    const receipt = dataOf(
      await t.gql<{ eraseUser: Receipt }>(ERASE_USER, { userId: victim.id }, admin.token),
    ).eraseUser;
    expect(receipt.deleted.find((d) => d.kind === 'users')?.count).toBe(1);
    for (const [table, { count }] of Object.entries(await rowsOf(prisma, victim.id))) {
      expect(count, table).toBe(0);
    }
    const nobody = dataOf(
      await t.gql<{ eraseUser: Receipt }>(ERASE_USER, { userId: randomUUID() }, admin.token),
    ).eraseUser;
    expect(nobody.deleted.every((d) => d.count === 0)).toBe(true);
    const bad = await t.gql(ERASE_USER, { userId: 'not-a-uuid' }, admin.token);
    expect(codesOf(bad)).toEqual(['BAD_USER_INPUT']);
  });

  it('stops an extraction job that is mid-run: it writes nothing afterwards', async () => {
    const user = await t.newUser();
    const { sessionId } = await startChat(t, user.token, personas.mira ?? '');
    await send(t, user.token, sessionId, "I'm a pilot and I love sailing");
    const gate = gated.hold();
    const running = t.worker.runOnce();
    await gate.entered; // the job has read the turn and is extracting
    const erased = await t.gql(ERASE_ME, { confirmation: 'ERASE MY ACCOUNT' }, user.token);
    dataOf(erased);
    const before = await jobOutcomes();
    gate.release();
    expect(await running).toBe(1);

    for (const [table, { count }] of Object.entries(await rowsOf(prisma, user.id))) {
      expect(count, `rows of the erased user in ${table}`).toBe(0);
    }
    // It ended quietly: counted done, not failed, retried or lost.
    const after = await jobOutcomes();
    expect(after).toEqual({ ...before, done: (before.done ?? 0) + 1 });
  });

  it('gives a still-valid token of an erased user a fresh, empty account (never a 500)', async () => {
    const user = await populate(`zq${randomUUID().slice(0, 8)}`);
    dataOf(await t.gql(ERASE_ME, { confirmation: 'ERASE MY ACCOUNT' }, user.token));
    const viewer = await t.gql<{ viewer: { id: string; sessions: { edges: unknown[] } } }>(
      '{ viewer { id sessions { edges { node { id } } } } profileMemories { edges { node { id } } } }',
      {},
      user.token,
    );
    expect(dataOf(viewer).viewer).toEqual({ id: expect.any(String), sessions: { edges: [] } });
    const { sessionId } = await startChat(t, user.token, personas.mira ?? '');
    expect((await send(t, user.token, sessionId, 'Hello again')).reply.content).toBeTruthy();
  });
});

describe('a token whose user row was deleted by hand (defect 2)', () => {
  it('startChat, sendMessage and viewer work: the account starts over', async () => {
    const user = await t.newUser();
    await startChat(t, user.token, personas.mira ?? ''); // the id is now in the provisioning cache
    await prisma.$executeRaw`DELETE FROM users WHERE id = ${user.id}::uuid`;
    const started = await t.gql<{ startChat: { session: { id: string } } }>(
      'mutation S($p: ID!) { startChat(input: { personaId: $p }) { session { id } } }',
      { p: personas.rook },
      user.token,
    );
    const sessionId = dataOf(started).startChat.session.id;
    expect((await send(t, user.token, sessionId, "I'm a baker")).reply.content).toBeTruthy();

    const other = await t.newUser();
    await startChat(t, other.token, personas.mira ?? '');
    await prisma.$executeRaw`DELETE FROM users WHERE id = ${other.id}::uuid`;
    const viewer = await t.gql<{ viewer: { id: string } }>('{ viewer { id } }', {}, other.token);
    expect(dataOf(viewer).viewer.id).toBeTruthy();
  });
});

describe('chat session deletion', () => {
  it('deletes the messages, keeps the memories (unlinked), and only for the owner or an admin', async () => {
    const owner = await t.newUser();
    const stranger = await t.newUser();
    const admin = await t.newUser({ admin: true });
    const first = await startChat(t, owner.token, personas.mira ?? '');
    const second = await startChat(t, owner.token, personas.mira ?? '');
    await send(t, owner.token, first.sessionId, "I'm a carpenter from Oslo");
    await send(t, owner.token, first.sessionId, 'We laugh about your bad jokes');
    await send(t, owner.token, second.sessionId, 'I love tea');
    await t.drainJobs();
    const firstId = rawId(first.sessionId);
    const learnt = await prisma.memory.findMany({ where: { userId: owner.id } });
    const fromFirst = learnt.filter((m) => m.sourceSessionId === firstId);
    const layers = new Set(fromFirst.map((m) => (m.instanceId ? 'RELATIONSHIP' : 'PROFILE')));
    expect(layers).toEqual(new Set(['PROFILE', 'RELATIONSHIP']));

    // A stranger and a random id get the same answer.
    const theirs = await t.gql(DELETE_SESSION, { sessionId: first.sessionId }, stranger.token);
    const random = await t.gql(
      DELETE_SESSION,
      { sessionId: Buffer.from(`ChatSession:${randomUUID()}`).toString('base64') },
      stranger.token,
    );
    expect(codesOf(theirs)).toEqual(['NOT_FOUND']);
    expect(codesOf(random)).toEqual(['NOT_FOUND']);
    expect(theirs.errors?.[0]?.message).toBe(random.errors?.[0]?.message);

    const byOwner = await t.gql<{
      deleteChatSession: {
        deletedSessionId: string;
        deletedMessages: number;
        unlinkedMemories: number;
      };
    }>(DELETE_SESSION, { sessionId: first.sessionId }, owner.token);
    const payload = dataOf(byOwner).deleteChatSession;
    expect(payload.deletedSessionId).toBe(first.sessionId);
    expect(payload.deletedMessages).toBe(4);

    const sessions = await prisma.chatSession.findMany({ where: { userId: owner.id } });
    expect(sessions).toHaveLength(1);
    const [kept] = sessions;
    expect(await prisma.message.count({ where: { userId: owner.id } })).toBe(2);
    expect(
      await prisma.message.count({ where: { sessionId: { not: kept?.id }, userId: owner.id } }),
    ).toBe(0);
    // Every memory is still there; those of the deleted session lost their source link only.
    const memories = await prisma.memory.findMany({ where: { userId: owner.id } });
    expect(memories.map((m) => m.id).sort()).toEqual(learnt.map((m) => m.id).sort());
    const unlinked = memories.filter((m) => m.sourceSessionId === null);
    expect(unlinked.map((m) => m.id).sort()).toEqual(fromFirst.map((m) => m.id).sort());
    expect(payload.unlinkedMemories).toBe(fromFirst.length);
    for (const m of unlinked) expect(m.sourceMessageId).toBeNull();
    // The relationship memories stay with their persona instance.
    expect(unlinked.some((m) => m.instanceId === rawId(first.instanceId))).toBe(true);
    expect(
      memories
        .filter((m) => m.sourceSessionId !== null)
        .every((m) => m.sourceSessionId === kept?.id),
    ).toBe(true);

    const again = await t.gql(DELETE_SESSION, { sessionId: first.sessionId }, owner.token);
    expect(codesOf(again)).toEqual(['NOT_FOUND']);
    const byAdmin = await t.gql(DELETE_SESSION, { sessionId: second.sessionId }, admin.token);
    expect(dataOf(byAdmin)).toMatchObject({ deleteChatSession: { deletedMessages: 2 } });
    expect(await prisma.message.count({ where: { userId: owner.id } })).toBe(0);
  });

  it('a job of a deleted session that is mid-run writes nothing and completes', async () => {
    const user = await t.newUser();
    const { sessionId } = await startChat(t, user.token, personas.mira ?? '');
    await send(t, user.token, sessionId, "I'm a welder and I love opera");
    const gate = gated.hold();
    const running = t.worker.runOnce();
    await gate.entered;
    dataOf(await t.gql(DELETE_SESSION, { sessionId }, user.token));
    gate.release();
    expect(await running).toBe(1);
    expect(await prisma.memory.count({ where: { userId: user.id } })).toBe(0);
    const jobs = await prisma.job.findMany({ where: { userId: user.id } });
    expect(jobs.map((j) => j.status)).toEqual(['DONE']);
  });
});

describe('exportMemories', () => {
  it('includes the chat sessions with their messages (format version 2)', async () => {
    const user = await t.newUser();
    const { sessionId } = await startChat(t, user.token, personas.mira ?? '');
    await send(t, user.token, sessionId, 'I collect stamps');
    const res = await t.gql<{ exportMemories: Record<string, unknown> }>(
      '{ exportMemories }',
      {},
      user.token,
    );
    const doc = dataOf(res).exportMemories as {
      version: number;
      chats: { messages: { role: string; content: string }[] }[];
    };
    expect(doc.version).toBe(2);
    expect(doc.chats).toHaveLength(1);
    expect(doc.chats[0]?.messages.map((m) => m.role)).toEqual(['USER', 'ASSISTANT']);
    expect(doc.chats[0]?.messages[0]?.content).toBe('I collect stamps');
  });
});
