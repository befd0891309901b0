import { randomUUID } from 'node:crypto';
import type { PrismaClient } from '@prisma/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliEnv } from '../../src/cli/common.js';
import { reembedCommand } from '../../src/cli/reembed.js';
import { countPending, planReembed, reembedMemories } from '../../src/memory/reembed.js';
import { insertMemory, searchLayer } from '../../src/memory/store.js';
import { DEFAULT_PERSONAS } from '../../src/personas/defaults.js';
import { upsertPersonas } from '../../src/personas/seed.js';
import { LocalEmbedder } from '../../src/providers/embeddings/local.js';
import type { Embedder } from '../../src/providers/embeddings/types.js';
import { openTestDatabase, type TestDatabase } from '../helpers/database.js';
import { PROCESS_TEST_TIMEOUT_MS } from '../helpers/timeouts.js';
import { captureIo, openChildDatabase, runCliProcess } from './helpers.js';

const OLD = 'old-model';
let database: TestDatabase;
let prisma: PrismaClient;
const embedder = new LocalEmbedder();

/** A vector "from another model": deterministic, unrelated to the text. */
function oldVector(seed: number): number[] {
  return Array.from({ length: 512 }, (_, i) => Math.sin((i + 1) * (seed + 1)));
}

/** A user with a persona instance and memories embedded by OLD, half profile, half relationship. */
async function seedOldMemories(db: PrismaClient, contents: string[]) {
  const userId = randomUUID();
  await db.user.create({ data: { id: userId } });
  const persona = await db.persona.findUniqueOrThrow({ where: { slug: 'mira' } });
  const instance = await db.personaInstance.create({ data: { userId, personaId: persona.id } });
  const ids: string[] = [];
  for (const [i, content] of contents.entries()) {
    const id = await insertMemory(db, {
      scope: { userId, instanceId: i % 2 === 0 ? null : instance.id },
      content,
      category: 'FACT',
      confidence: null,
      embedding: oldVector(i),
      embeddingModel: OLD,
      sourceMessageId: null,
      sourceSessionId: null,
    });
    if (id) ids.push(id);
  }
  return { userId, instanceId: instance.id, ids };
}

const FACTS = [
  'I work as a nurse at a hospital in Lisbon',
  'We joked about her terrible puns',
  'I am allergic to cats',
  'He promised to tell me how the job interview went',
  'My favourite food is grilled sardines',
];

beforeAll(async () => {
  database = await openTestDatabase();
  prisma = database.db.prisma;
  await upsertPersonas(prisma, DEFAULT_PERSONAS);
});

afterAll(async () => {
  await embedder.close();
  await database?.close();
});

describe('reembedMemories', () => {
  it('moves rows to the configured model in resumable batches; recall finds them afterwards', async () => {
    const { userId, instanceId, ids } = await seedOldMemories(prisma, FACTS);
    expect(await planReembed(prisma, embedder.model)).toEqual({
      targetModel: 'use-lite-512',
      pending: 5,
      byModel: [{ model: OLD, count: 5 }],
    });
    const before = await prisma.memory.findMany({ where: { userId }, orderBy: { id: 'asc' } });

    // Search never compares vectors of two models: not yet migrated means not recalled.
    const [query] = await embedder.embed(['What do I do for work?'], 'query');
    const search = { embedding: query ?? [], model: embedder.model, k: 5 };
    expect(await searchLayer(prisma, { userId, instanceId: null }, search)).toEqual([]);

    // Interrupted after the first batch (as the first Ctrl-C does)...
    const stop = new AbortController();
    const first = await reembedMemories(prisma, embedder, {
      batchSize: 2,
      signal: stop.signal,
      onBatch: () => stop.abort(),
    });
    expect(first).toEqual({
      migrated: 2,
      skipped: 0,
      batches: 1,
      outcome: 'stopped',
      remaining: 3,
    });
    const migratedFirst = await prisma.memory.findMany({
      where: { embeddingModel: embedder.model },
      orderBy: { id: 'asc' },
    });
    // ...the lowest ids went first, whole batch at once.
    expect(migratedFirst.map((m) => m.id)).toEqual([...ids].sort().slice(0, 2));

    // ...and a rerun finishes the rest.
    const progress: number[] = [];
    const second = await reembedMemories(prisma, embedder, {
      batchSize: 2,
      onBatch: (p) => progress.push(p.migrated),
    });
    expect(second).toEqual({ migrated: 3, skipped: 0, batches: 2, outcome: 'done', remaining: 0 });
    expect(progress).toEqual([2, 3]);

    const after = await prisma.memory.findMany({ where: { userId }, orderBy: { id: 'asc' } });
    expect(after.map((m) => m.embeddingModel)).toEqual(Array(5).fill('use-lite-512'));
    // Only the vector changed: content and updatedAt are the memory's, not the migration's.
    expect(after.map((m) => [m.content, m.updatedAt])).toEqual(
      before.map((m) => [m.content, m.updatedAt]),
    );

    // Recall's query: the configured model's vector of the question, searched per layer.
    const profile = await searchLayer(prisma, { userId, instanceId: null }, { ...search, k: 1 });
    expect(profile.map((r) => r.memory.content)).toEqual([FACTS[0]]);
    const [interview] = await embedder.embed(['how did the interview go?'], 'query');
    const relationship = await searchLayer(
      prisma,
      { userId, instanceId },
      { embedding: interview ?? [], model: embedder.model, k: 1 },
    );
    expect(relationship.map((r) => r.memory.content)).toEqual([FACTS[3]]);
  });

  it('a second interrupt drops the batch being embedded, writing none of it', async () => {
    await seedOldMemories(prisma, ['I play the cello', 'She teased me about my cello']);
    const abandon = new AbortController();
    let release = () => {};
    const stalled: Embedder = {
      model: embedder.model,
      provider: 'test',
      embed: async (texts, type) => {
        abandon.abort();
        await new Promise<void>((resolve) => {
          release = resolve;
        });
        return embedder.embed(texts, type);
      },
    };
    const result = await reembedMemories(prisma, stalled, {
      batchSize: 10,
      abandonSignal: abandon.signal,
    });
    release();
    expect(result).toEqual({
      migrated: 0,
      skipped: 0,
      batches: 0,
      outcome: 'abandoned',
      remaining: 2,
    });
    expect(await countPending(prisma, embedder.model)).toBe(2);
    await reembedMemories(prisma, embedder, { batchSize: 10 });
    expect(await countPending(prisma, embedder.model)).toBe(0);
  });

  it('skips a memory edited while its batch was embedded; the rerun picks it up', async () => {
    const { ids } = await seedOldMemories(prisma, ['I live in Porto', 'I drive a red car']);
    const edited = [...ids].sort()[0] as string;
    const editing: Embedder = {
      model: embedder.model,
      provider: 'test',
      embed: async (texts, type) => {
        await prisma.memory.update({ where: { id: edited }, data: { content: 'I live in Faro' } });
        return embedder.embed(texts, type);
      },
    };
    const result = await reembedMemories(prisma, editing, { batchSize: 10 });
    expect(result).toMatchObject({ migrated: 1, skipped: 1, outcome: 'done', remaining: 1 });
    const row = await prisma.memory.findUniqueOrThrow({ where: { id: edited } });
    expect(row.embeddingModel).toBe(OLD);
    expect(await reembedMemories(prisma, embedder, { batchSize: 10 })).toMatchObject({
      migrated: 1,
      remaining: 0,
    });
  });
});

describe('npm run reembed', () => {
  const env = cliEnv({ NODE_ENV: 'test' });

  it('dry-run counts without embedding, a run migrates, bad options exit 1', async () => {
    await seedOldMemories(prisma, ['I collect stamps']);
    const io = captureIo();
    expect(await reembedCommand(['--dry-run'], io, { env, db: database.db, embedder })).toBe(0);
    expect(io.out()).toBe('Dry run: would re-embed 1 memories in 1 batches of 64.\n');
    expect(io.err()).toContain('warning: until migrated, 1 memories are not recalled');
    expect(await countPending(prisma, embedder.model)).toBe(1);

    const run = captureIo();
    expect(await reembedCommand([], run, { env, db: database.db, embedder })).toBe(0);
    expect(run.out()).toMatch(/^Re-embedded 1 memories with use-lite-512 in 1 batches/);
    const again = captureIo();
    expect(await reembedCommand([], again, { env, db: database.db, embedder })).toBe(0);
    expect(again.out()).toMatch(/^Nothing to do: all \d+ memories use use-lite-512\.\n$/);

    for (const argv of [['--batch', '0'], ['--batch', 'ten'], ['--bogus'], ['extra']]) {
      const bad = captureIo();
      expect(await reembedCommand(argv, bad, { env, db: database.db, embedder })).toBe(1);
      expect(bad.err()).toMatch(/^error: .*\nRun `npm run reembed -- --help` for usage\.\n$/);
    }
  });

  it('runs as a process; SIGINT stops it after a whole batch, and a rerun finishes', {
    timeout: PROCESS_TEST_TIMEOUT_MS,
  }, async () => {
    const child = await openChildDatabase();
    try {
      const facts = Array.from({ length: 100 }, (_, i) => `Fact number ${i} about my life`);
      await child.use(async (db) => {
        await upsertPersonas(db.prisma, DEFAULT_PERSONAS);
        await seedOldMemories(db.prisma, facts);
      });
      let signalled = false;
      const run = await runCliProcess(
        'src/cli/reembed.ts',
        ['--batch', '2'],
        child.env,
        (stderr, proc) => {
          // Not a TTY: one plain progress line per 10 % step. Interrupt at the first one.
          if (!signalled && / 10\.0% {2}10\/100 /.test(stderr)) {
            signalled = true;
            proc.kill('SIGINT');
          }
        },
      );
      expect(run.stderr).toContain('Memories by model: old-model: 100.');
      expect(run.stderr).toContain('warning: until migrated, 100 memories are not recalled');
      expect(run.stderr).toMatch(
        /Re-embedding \[##-+\] {2}10\.0% {2}10\/100 {2}[\d.]+\/s {2}ETA \d:\d\d\n/,
      );
      expect(run.stderr).toContain('Finishing the batch in flight, then stopping');
      expect(run.code, run.stderr).toBe(130);
      const stopped =
        /^Re-embedded (\d+) memories with use-lite-512 in \d+ batches \([\d.]+ s\)\.\nStopped early: (\d+) left\. Rerun to continue\.\n$/.exec(
          run.stdout,
        );
      expect(stopped, run.stdout).not.toBeNull();
      const [migrated, left] = [Number(stopped?.[1]), Number(stopped?.[2])];
      expect(migrated + left).toBe(100);
      expect(migrated % 2).toBe(0); // whole batches only
      expect(left).toBeGreaterThan(0);

      await child.use(async (db) => {
        expect(await countPending(db.prisma, 'use-lite-512')).toBe(left);
        const rest = await reembedMemories(db.prisma, embedder, { batchSize: 50 });
        expect(rest).toMatchObject({ migrated: left, outcome: 'done', remaining: 0 });
      });
    } finally {
      await child.close();
    }
  });
});
