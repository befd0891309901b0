import { Prisma, type PrismaClient } from '@prisma/client';
import type { Embedder } from '../providers/embeddings/types.js';
import { toVectorLiteral } from './store.js';

/**
 * Moves every memory to the configured embedding model, batch by batch.
 *
 * This is the second module with vector SQL (store.ts is the first and owns everything the
 * request path does). It is kept apart because it is a bulk maintenance statement no request
 * runs, with its own resumability rules; it reuses store.ts's `toVectorLiteral`, and like
 * store.ts every value is a bound parameter (vectors travel as text cast to `vector`).
 *
 * Resumable by construction: the work left is exactly the rows whose `embedding_model` is not
 * the target, so a rerun continues where an interrupted run stopped. Each batch is written by
 * one UPDATE statement, i.e. one transaction: a batch is either fully migrated or not at all.
 *
 * While rows are mixed, search compares only vectors of the query's model (searchLayer filters
 * on `embedding_model`), so memories not yet migrated are not recalled until their batch lands.
 */

export interface ModelCount {
  model: string;
  count: number;
}

export interface ReembedPlan {
  targetModel: string;
  /** Rows to migrate: another model's vector, or none at all. */
  pending: number;
  /** Every model present in the table, with its row count. */
  byModel: ModelCount[];
}

export interface ReembedProgress {
  /** Rows written with the target model so far in this run. */
  migrated: number;
  /** Rows whose content changed while their batch was being embedded (left for a rerun). */
  skipped: number;
  batches: number;
}

export interface ReembedResult extends ReembedProgress {
  /** done: nothing left at the end of the pass; stopped: `signal`; abandoned: `abandonSignal`. */
  outcome: 'done' | 'stopped' | 'abandoned';
  /** Rows still on another model afterwards (skipped ones, or rows written meanwhile). */
  remaining: number;
}

export interface ReembedOptions {
  batchSize: number;
  /** Stop after the batch in flight is written (first Ctrl-C). */
  signal?: AbortSignal;
  /** Stop now: the batch being embedded is dropped unwritten (second Ctrl-C). */
  abandonSignal?: AbortSignal;
  onBatch?(progress: ReembedProgress): void;
}

const NEEDS_WORK = (model: string) =>
  Prisma.sql`(embedding_model <> ${model} OR embedding IS NULL)`;

export async function planReembed(prisma: PrismaClient, targetModel: string): Promise<ReembedPlan> {
  const rows = await prisma.$queryRaw<{ model: string; count: bigint | number }[]>`
    SELECT embedding_model AS model, count(*) AS count FROM memories
    GROUP BY embedding_model ORDER BY count(*) DESC, embedding_model`;
  return {
    targetModel,
    pending: await countPending(prisma, targetModel),
    byModel: rows.map((r) => ({ model: r.model, count: Number(r.count) })),
  };
}

export async function countPending(prisma: PrismaClient, targetModel: string): Promise<number> {
  const [row] = await prisma.$queryRaw<{ n: bigint | number }[]>`
    SELECT count(*) AS n FROM memories WHERE ${NEEDS_WORK(targetModel)}`;
  return Number(row?.n ?? 0);
}

const ABANDONED = Symbol('abandoned');

/** Resolves with the promise, or with ABANDONED as soon as the signal fires. */
function unlessAbandoned<T>(work: Promise<T>, signal?: AbortSignal): Promise<T | typeof ABANDONED> {
  if (!signal) return work;
  if (signal.aborted) return Promise.resolve(ABANDONED);
  return new Promise((resolve, reject) => {
    const onAbort = () => resolve(ABANDONED);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

export async function reembedMemories(
  prisma: PrismaClient,
  embedder: Embedder,
  options: ReembedOptions,
): Promise<ReembedResult> {
  const model = embedder.model;
  const progress: ReembedProgress = { migrated: 0, skipped: 0, batches: 0 };
  // Keyset cursor within this run: a row skipped here (content changed mid-batch) is not
  // selected again in the same pass, so the loop always ends; a rerun starts from the top.
  let after: string | null = null;
  let outcome: ReembedResult['outcome'] = 'done';
  for (;;) {
    // PGlite and the local embedder run in this thread and settle their promises as
    // microtasks, so without this a whole run never returns to the event loop: no signal
    // handler (Ctrl-C) or timer would fire until it ended.
    await new Promise((resolve) => setImmediate(resolve));
    if (options.signal?.aborted) {
      outcome = 'stopped';
      break;
    }
    const cursor: Prisma.Sql = after ? Prisma.sql`AND id > ${after}::uuid` : Prisma.empty;
    const rows: { id: string; content: string }[] = await prisma.$queryRaw`
      SELECT id, content FROM memories
      WHERE ${NEEDS_WORK(model)} ${cursor}
      ORDER BY id
      LIMIT ${options.batchSize}`;
    const last = rows.at(-1);
    if (!last) break;
    after = last.id;

    const vectors = await unlessAbandoned(
      embedder.embed(
        rows.map((r) => r.content),
        'document',
      ),
      options.abandonSignal,
    );
    if (vectors === ABANDONED) {
      outcome = 'abandoned';
      break;
    }
    if (vectors.length !== rows.length) {
      throw new Error(`embedder returned ${vectors.length} vectors for ${rows.length} texts`);
    }
    const written = await writeBatch(
      prisma,
      model,
      rows,
      vectors.map((v) => toVectorLiteral(v)),
    );
    progress.migrated += written;
    progress.skipped += rows.length - written;
    progress.batches += 1;
    options.onBatch?.({ ...progress });
  }
  return { ...progress, outcome, remaining: await countPending(prisma, model) };
}

/**
 * One statement, one transaction for the whole batch. The content guard skips a row edited
 * while its batch was being embedded: its new content must not get the old content's vector.
 * `updated_at` is left alone: it records changes to the memory, and its content is unchanged.
 */
async function writeBatch(
  prisma: PrismaClient,
  model: string,
  rows: readonly { id: string; content: string }[],
  vectors: readonly string[],
): Promise<number> {
  const updated = await prisma.$queryRaw<{ id: string }[]>`
    UPDATE memories AS m
    SET embedding = v.embedding::vector, embedding_model = ${model}
    FROM unnest(${rows.map((r) => r.id)}::uuid[], ${rows.map((r) => r.content)}::text[],
      ${[...vectors]}::text[]) AS v(id, content, embedding)
    WHERE m.id = v.id AND m.content = v.content
    RETURNING m.id`;
  return updated.length;
}
