import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eraseUser } from '../src/account/erase.js';
import { openTurn } from '../src/chat/turn-store.js';
import { type RawQuery, rawQueryOf } from '../src/db/raw.js';
import { DEFAULT_FUSION } from '../src/memory/fusion.js';
import {
  type HybridLayerQuery,
  insertMemory,
  type LayerScope,
  readLayerSizes,
  searchLayersHybrid,
  supersedeMemory,
} from '../src/memory/store.js';
import { EMBEDDING_DIMENSIONS } from '../src/providers/embeddings/types.js';
import { createTestContext, type TestContext } from './helpers/app.js';
import { personaIds, startChat } from './helpers/chat.js';
import { tier } from './helpers/database.js';

/**
 * memory_layer_stats (migration 20261204020000): per (user, layer) the live memories and their
 * lexical length, kept by triggers, so recall reads BM25's N and average length and picks its
 * exact-or-index path without reading the layer. memory_terms (migration 20261206010000): the
 * postings a large layer's word side reads instead of its memories. Both must follow every kind
 * of write; the index path must rank like the exact one.
 */

const MODEL = 'test-stats';

/** A deterministic unit vector: a few non-zero coordinates from a small linear generator. */
function vector(seed: number): number[] {
  const v = new Array<number>(EMBEDDING_DIMENSIONS).fill(0);
  let x = seed * 7919 + 13;
  for (let i = 0; i < 24; i++) {
    x = (x * 48271) % 2147483647;
    v[x % EMBEDDING_DIMENSIONS] = ((x % 1000) / 1000) * 2 - 1;
  }
  const norm = Math.hypot(...v) || 1;
  return v.map((c) => c / norm);
}

describe('memory layer stats', () => {
  let t: TestContext;
  beforeAll(async () => {
    t = await createTestContext();
  });
  afterAll(() => t?.close());

  async function userWithInstance(): Promise<{
    userId: string;
    instanceId: string;
    sessionId: string;
  }> {
    const u = await t.newUser();
    const ids = await personaIds(t, u.token);
    const first = Object.values(ids)[0];
    if (!first) throw new Error('no persona');
    await startChat(t, u.token, first);
    const session = await t.services.prisma.chatSession.findFirstOrThrow({
      where: { userId: u.id },
    });
    return { userId: u.id, instanceId: session.instanceId, sessionId: session.id };
  }

  async function put(scope: LayerScope, content: string, seed: number): Promise<string> {
    const id = await insertMemory(t.services.prisma, {
      scope,
      content,
      category: 'OTHER',
      confidence: null,
      embedding: vector(seed),
      embeddingModel: MODEL,
      sourceMessageId: null,
      sourceSessionId: null,
    });
    if (!id) throw new Error(`duplicate: ${content}`);
    return id;
  }

  type Row = { key: string; live: number; length: number };
  /** What the triggers keep, and what the rows say, per layer of one user. */
  async function statsOf(userId: string): Promise<{ kept: Row[]; actual: Row[] }> {
    const kept = await t.services.prisma.$queryRaw<Row[]>`
      SELECT instance_key::text AS key, live_rows::int AS live, lexical_length::int AS length
      FROM memory_layer_stats WHERE user_id = ${userId}::uuid ORDER BY 1`;
    const actual = await t.services.prisma.$queryRaw<Row[]>`
      SELECT COALESCE(instance_id, '00000000-0000-0000-0000-000000000000'::uuid)::text AS key,
        count(*)::int AS live, COALESCE(sum(length(search_tsv)), 0)::int AS length
      FROM memories WHERE user_id = ${userId}::uuid AND superseded_by_id IS NULL
      GROUP BY 1 ORDER BY 1`;
    return { kept, actual };
  }

  /**
   * Every posting the triggers keep, against the postings of every live memory now (the whole
   * table: a posting of another user's or of a deleted memory is as wrong as a missing one).
   */
  async function expectPostingsInStep(): Promise<number> {
    type Posting = { term: string; memoryId: string; tf: number; len: number };
    const kept = await t.services.prisma.$queryRaw<Posting[]>`
      SELECT term::text, memory_id::text AS "memoryId", tf::int, len
      FROM memory_terms ORDER BY 1, 2`;
    const actual = await t.services.prisma.$queryRaw<Posting[]>`
      SELECT p.term::text, p.memory_id::text AS "memoryId", p.tf::int, p.len
      FROM memories AS m,
        memory_postings(m.id, COALESCE(m.instance_id, m.user_id), m.search_tsv) AS p
      WHERE m.superseded_by_id IS NULL ORDER BY 1, 2`;
    expect(kept).toEqual(actual);
    return kept.length;
  }

  async function expectInStep(userId: string): Promise<Row[]> {
    const { kept, actual } = await statsOf(userId);
    expect(kept).toEqual(actual);
    await expectPostingsInStep();
    return kept;
  }

  it('follow inserts, supersedes, edits, deletes, a deleted persona instance and an erasure', async () => {
    const { userId, instanceId } = await userWithInstance();
    const other = await userWithInstance();
    const profile = { userId, instanceId: null };
    const relationship = { userId, instanceId };
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(await put(profile, `User likes hobby number ${i}`, i));
    for (let i = 0; i < 4; i++)
      await put(relationship, `We talked about film ${i} at length`, 10 + i);
    await put({ userId: other.userId, instanceId: null }, 'User has a parrot', 99);
    // Bulk: one statement, many rows, both layers.
    await t.services.prisma.$executeRaw`
      INSERT INTO memories (id, user_id, instance_id, content, content_hash, category,
        embedding_model, created_at, updated_at)
      SELECT gen_random_uuid(), ${userId}::uuid, CASE WHEN g % 2 = 0 THEN NULL ELSE ${instanceId}::uuid END,
        'Bulk memory about topic ' || g, md5('bulk' || g), 'OTHER', ${MODEL}, now(), now()
      FROM generate_series(1, 9) AS g`;
    let rows = await expectInStep(userId);
    expect(rows.map((r) => r.live).sort((a, b) => a - b)).toEqual([9, 10]);

    const newer = await put(profile, 'User likes hobby number 0 a lot, again', 100);
    const [first, second] = ids as [string, string];
    expect(await supersedeMemory(t.services.prisma, profile, first, newer)).not.toBeNull();
    await expectInStep(userId);
    // Brought back (an undo), and an edit that changes the document's length only.
    await t.services.prisma.memory.update({
      where: { id: first },
      data: { supersededById: null, supersededAt: null },
    });
    await t.services.prisma.memory.update({
      where: { id: second },
      data: { content: 'User likes hobby number 1, mostly on rainy weekends with friends' },
    });
    await expectInStep(userId);
    // An update that changes nothing recall counts writes nothing.
    await t.services.prisma.memory.updateMany({ where: { userId }, data: { confidence: 0.5 } });
    await expectInStep(userId);

    await t.services.prisma.memory.delete({ where: { id: second } });
    await expectInStep(userId);

    // The persona instance goes: its layer's memories cascade, its stats row with them.
    await t.services.prisma.personaInstance.delete({ where: { id: instanceId } });
    rows = await expectInStep(userId);
    expect(rows.map((r) => r.key)).toEqual(['00000000-0000-0000-0000-000000000000']);

    const before = await expectPostingsInStep();
    await eraseUser(t.services.prisma, userId);
    expect((await statsOf(userId)).kept).toEqual([]);
    // The erased user's postings went with their memories; everyone else's are still there.
    expect(await expectPostingsInStep()).toBeLessThan(before);
    const [left] = await t.services.prisma.$queryRaw<{ n: number }[]>`
      SELECT count(*)::int AS n FROM memory_terms AS t
      WHERE NOT EXISTS (SELECT 1 FROM memories AS m WHERE m.id = t.memory_id)`;
    expect(left?.n).toBe(0);
    // Nobody else's counts moved.
    const others = await expectInStep(other.userId);
    expect(others).toHaveLength(1);
  });

  it('postings survive nothing they should not: a TRUNCATE empties them, a rebuild restores them', async () => {
    const { userId } = await userWithInstance();
    const profile = { userId, instanceId: null };
    const id = await put(profile, 'User restores antique harps', 6000);
    await put(profile, 'User tunes harps on Sundays', 6001);
    const total = await expectPostingsInStep();
    // Drift, as a load around the triggers would leave it: one memory's postings lost, a stray one.
    await t.services.prisma.$executeRaw`DELETE FROM memory_terms WHERE memory_id = ${id}::uuid`;
    await t.services.prisma.$executeRaw`
      INSERT INTO memory_terms (term, memory_id, tf, len) VALUES (42, gen_random_uuid(), 1, 1)`;
    const [rebuilt] = await t.services.prisma.$queryRaw<{ n: number }[]>`
      SELECT memory_terms_rebuild()::int AS n`;
    expect(rebuilt?.n).toBe(total);
    expect(await expectPostingsInStep()).toBe(total);
    // TRUNCATE fires no delete trigger; its own trigger empties the postings. Rolled back.
    const rollback = new Error('rollback');
    await expect(
      t.services.prisma.$transaction(async (tx) => {
        await tx.$executeRawUnsafe('TRUNCATE memories CASCADE');
        const [left] = await tx.$queryRaw<{ n: number }[]>`
          SELECT count(*)::int AS n FROM memory_terms`;
        expect(left?.n).toBe(0);
        throw rollback;
      }),
    ).rejects.toBe(rollback);
    expect(await expectPostingsInStep()).toBe(total);
  });

  it('a layer from annMinRows on ranks through the index path like the exact path', async () => {
    const { userId } = await userWithInstance();
    const profile = { userId, instanceId: null };
    const words = ['river', 'garden', 'violin', 'market', 'harbour', 'comet', 'lantern', 'meadow'];
    for (let i = 0; i < 240; i++) {
      const a = words[i % words.length];
      const b = words[(i * 3 + 1) % words.length];
      await put(profile, `Memory ${i} about the ${a} and the ${b}`, 1000 + i);
    }
    const exact = { ...DEFAULT_FUSION, annMinRows: 1_000_000 };
    const indexed = { ...DEFAULT_FUSION, annMinRows: 100 };
    let agree = 0;
    let total = 0;
    for (let q = 0; q < 12; q++) {
      const query = {
        embedding: vector(1000 + q * 17),
        text: `the ${words[q % words.length]} again`,
        model: MODEL,
        k: 8,
      };
      const [a = []] = await searchLayersHybrid(
        t.services.prisma,
        [{ scope: profile, k: 8 }],
        query,
        exact,
      );
      const [b = []] = await searchLayersHybrid(
        t.services.prisma,
        [{ scope: profile, k: 8 }],
        query,
        indexed,
      );
      expect(a).toHaveLength(8);
      expect(b).toHaveLength(8);
      const exactIds = new Set(a.map((h) => h.memory.id));
      agree += b.filter((h) => exactIds.has(h.memory.id)).length;
      total += 8;
    }
    // HNSW is approximate; on 240 rows with ef_search 100 it should find (nearly) all.
    expect(agree / total).toBeGreaterThanOrEqual(0.95);
  });

  it("a large layer's words come from its own postings: not another layer's or user's, superseded only when asked", async () => {
    const { userId, instanceId } = await userWithInstance();
    const other = await userWithInstance();
    const profile = { userId, instanceId: null };
    const relationship = { userId, instanceId };
    const mine: string[] = [];
    for (let i = 0; i < 6; i++)
      mine.push(await put(profile, `User plays the violin with group ${i}`, 4000 + i));
    await put(profile, 'User repairs old clocks', 4010);
    const ours = await put(relationship, 'We talked about a violin concert', 4020);
    await put({ userId: other.userId, instanceId: null }, 'User sells a violin', 4030);
    await put(other, 'We played violin duets', 4031);
    const newer = await put(profile, 'User now plays the viola, not the violin', 4040);
    const [old = ''] = mine;
    expect(await supersedeMemory(t.services.prisma, profile, old, newer)).not.toBeNull();
    // Words only: minScore 1 leaves the meaning side nothing (no stored vector is the query's).
    const query = { embedding: vector(1), text: 'violin', model: MODEL, k: 20, minScore: 1 };
    const index = { ...DEFAULT_FUSION, annMinRows: 1 };
    const exact = { ...DEFAULT_FUSION, annMinRows: 1_000_000 };
    for (const includeSuperseded of [false, true]) {
      for (const sized of [false, true]) {
        const layers: HybridLayerQuery[] = [
          { scope: profile, k: 20, liveRows: sized ? 7 : undefined },
          { scope: relationship, k: 20, liveRows: sized ? 1 : undefined },
        ];
        const run = async (fusion: typeof DEFAULT_FUSION) =>
          (
            await searchLayersHybrid(
              t.services.prisma,
              layers,
              { ...query, includeSuperseded },
              fusion,
            )
          ).map((list) => list.map((h) => h.memory.id));
        const [viaProfile = [], viaRelationship = []] = await run(index);
        expect([viaProfile, viaRelationship]).toEqual(await run(exact));
        const live = [...mine.slice(1), newer];
        expect(new Set(viaProfile)).toEqual(new Set(includeSuperseded ? [old, ...live] : live));
        expect(viaRelationship).toEqual([ours]);
      }
    }
  });

  it("a large layer's filter removes rows after the word ranking, and the results still fill up", async () => {
    const { userId } = await userWithInstance();
    const profile = { userId, instanceId: null };
    const events: string[] = [];
    for (let i = 0; i < 30; i++) {
      // The shortest documents rank first by BM25: the filter must look past them.
      const id = await put(
        profile,
        i < 24 ? `User violin ${i}` : `User played the violin at concert number ${i} downtown`,
        5000 + i,
      );
      if (i >= 24) events.push(id);
    }
    await t.services.prisma.memory.updateMany({
      where: { id: { in: events } },
      data: { category: 'EVENT' },
    });
    // Expired, and embedded by another model: never returned, on either path.
    const expired = await put(profile, 'User violin expired', 5100);
    await t.services.prisma.memory.update({
      where: { id: expired },
      data: { expiresAt: new Date(Date.now() - 60_000) },
    });
    const otherModel = await put(profile, 'User violin other model', 5101);
    await t.services.prisma.memory.update({
      where: { id: otherModel },
      data: { embeddingModel: 'another-model' },
    });
    const query = { embedding: vector(1), text: 'violin', model: MODEL, k: 10, minScore: 1 };
    const index = { ...DEFAULT_FUSION, annMinRows: 1, lexicalDepth: 4 };
    const exact = { ...DEFAULT_FUSION, annMinRows: 1_000_000, lexicalDepth: 4 };
    for (const liveRows of [undefined, 32]) {
      const run = async (fusion: typeof DEFAULT_FUSION, category?: 'EVENT') => {
        const [hits = []] = await searchLayersHybrid(
          t.services.prisma,
          [{ scope: profile, k: 10, liveRows }],
          { ...query, category },
          fusion,
        );
        return hits.map((h) => h.memory.id);
      };
      // lexicalDepth 4: the 4 best rows that pass the filter, out of 30 matching.
      const viaIndex = await run(index, 'EVENT');
      expect(viaIndex).toHaveLength(4);
      expect(events).toEqual(expect.arrayContaining(viaIndex));
      expect(new Set(viaIndex)).toEqual(new Set(await run(exact, 'EVENT')));
      const unfiltered = await run(index);
      expect(unfiltered).toHaveLength(4);
      expect(unfiltered).not.toContain(expired);
      expect(unfiltered).not.toContain(otherModel);
      expect(unfiltered).toEqual(await run(exact));
    }
  });

  it('one statement recalls several layers, each ranked on its own', async () => {
    const { userId, instanceId } = await userWithInstance();
    const profile = { userId, instanceId: null };
    const relationship = { userId, instanceId };
    await put(profile, 'User keeps bees on the roof', 1);
    await put(relationship, 'We joked about bees and honey', 2);
    await put(relationship, 'We planned a trip to the coast', 3);
    const query = { embedding: vector(2), text: 'bees', model: MODEL, k: 5 };
    const [p = [], r = []] = await searchLayersHybrid(
      t.services.prisma,
      [
        { scope: profile, k: 5 },
        { scope: relationship, k: 1 },
      ],
      query,
    );
    expect(p.map((h) => h.memory.content)).toEqual(['User keeps bees on the roof']);
    expect(r.map((h) => h.memory.content)).toEqual(['We joked about bees and honey']);
  });

  it('a turn reads its layer sizes as it opens; a known size fixes the path, and small layers run prepared', async () => {
    const { userId, instanceId, sessionId } = await userWithInstance();
    const profile = { userId, instanceId: null };
    const relationship = { userId, instanceId };
    const words = ['river', 'garden', 'violin', 'market', 'harbour', 'comet', 'lantern', 'meadow'];
    for (let i = 0; i < 120; i++) {
      const a = words[i % words.length];
      const b = words[(i * 3 + 1) % words.length];
      await put(profile, `Memory ${i} about the ${a} and the ${b}`, 2000 + i);
    }
    for (let i = 0; i < 5; i++)
      await put(relationship, `We spoke of the ${words[i]} once`, 3000 + i);
    const sizes = { profile: 120, relationship: 5 };
    expect(await readLayerSizes(t.services.sql, { userId, instanceId })).toEqual(sizes);
    const opened = await openTurn(t.services.sql, {
      userId,
      sessionId,
      content: 'hello there',
      clientMessageId: randomUUID(),
      now: new Date(),
      historyWindow: 10,
    });
    expect(opened.kind).toBe('turn');
    if (opened.kind === 'turn') expect(opened.liveRows).toEqual(sizes);

    // Which statements asked to be prepared.
    const prepared: boolean[] = [];
    const sql: RawQuery = (q, options) => {
      prepared.push(options?.prepare === true);
      return t.services.sql(q, options);
    };
    const layers = (known: boolean): HybridLayerQuery[] => [
      { scope: profile, k: 3, liveRows: known ? sizes.profile : undefined },
      { scope: relationship, k: 8, liveRows: known ? sizes.relationship : undefined },
    ];
    const ids = (lists: { memory: { id: string } }[][]) =>
      lists.map((l) => l.map((h) => h.memory.id));
    // Index path for the profile (120 ≥ 100), exact for the relationship layer; then all exact.
    for (const fusion of [
      { ...DEFAULT_FUSION, annMinRows: 100 },
      { ...DEFAULT_FUSION, annMinRows: 1_000_000 },
    ]) {
      prepared.length = 0;
      // More runs than PostgreSQL's five custom plans before it may take the generic one.
      for (let q = 0; q < 8; q++) {
        const query = {
          embedding: vector(2000 + q * 13),
          text: `the ${words[q % words.length]} and the ${words[(q + 3) % words.length]}`,
          model: MODEL,
          k: 8,
        };
        const unsized = await searchLayersHybrid(sql, layers(false), query, fusion);
        const sized = await searchLayersHybrid(sql, layers(true), query, fusion);
        expect(ids(sized)).toEqual(ids(unsized));
        expect(sized[0]).toHaveLength(3);
        expect(sized[1]).toHaveLength(5);
      }
      const allExact = fusion.annMinRows > sizes.profile;
      // unsized: never prepared; sized: prepared only when every layer is exact.
      expect(prepared).toEqual(Array.from({ length: 16 }, (_, i) => i % 2 === 1 && allExact));
    }
  });

  it.runIf(tier === 'postgres')(
    'DATABASE_PREPARED_STATEMENTS=false prepares nothing on the connection',
    async () => {
      const { userId, instanceId } = await userWithInstance();
      await put({ userId, instanceId: null }, 'User grows tomatoes', 1);
      const layers: HybridLayerQuery[] = [
        { scope: { userId, instanceId: null }, k: 3, liveRows: 1 },
        { scope: { userId, instanceId }, k: 8, liveRows: 0 },
      ];
      // A filter no other test of this file sets: a statement text none of them prepared on a
      // pooled connection. (DEALLOCATE would leave pg's own record of prepared names stale.)
      const query = {
        embedding: vector(1),
        text: 'tomatoes',
        model: MODEL,
        k: 8,
        createdAfter: new Date(0),
      };
      for (const prepared of [false, true]) {
        // One connection, so its own prepared statements can be read back.
        const count = await t.database.db.withSession(async (session) => {
          let text = '';
          const sql = rawQueryOf(session, { prepared });
          const [p = []] = await searchLayersHybrid(
            (q, options) => {
              text = q.text;
              return sql(q, options);
            },
            layers,
            query,
          );
          expect(p.map((h) => h.memory.content)).toEqual(['User grows tomatoes']);
          const [row] = await session.query<{ n: number }>(
            'SELECT count(*)::int AS n FROM pg_prepared_statements WHERE statement = $1',
            [text],
          );
          return row?.n;
        });
        expect(count).toBe(prepared ? 1 : 0);
      }
    },
  );
});
