import { createHash, randomUUID } from 'node:crypto';
import { Prisma, type PrismaClient } from '@prisma/client';
import { EMBEDDING_DIMENSIONS } from '../providers/embeddings/types.js';
import type { MemoryCategory, MemoryLayer } from './types.js';

/**
 * The only module that writes or reads the `vector(512)` column (Prisma cannot). Every
 * statement is a parameterised tagged template; vectors travel as text parameters cast to
 * `vector`, never spliced into SQL.
 */
export type Db = PrismaClient | Prisma.TransactionClient;

/** A memory row in Prisma's shape (minus the embedding), so GraphQL can treat it as the model. */
export interface MemoryRow {
  id: string;
  userId: string;
  instanceId: string | null;
  sourceMessageId: string | null;
  sourceSessionId: string | null;
  content: string;
  contentHash: string;
  category: MemoryCategory;
  confidence: number | null;
  embeddingModel: string;
  supersededById: string | null;
  supersededAt: Date | null;
  expiresAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface ScoredMemory {
  memory: MemoryRow;
  score: number;
}

const COLUMNS = Prisma.sql`id, user_id AS "userId", instance_id AS "instanceId",
  source_message_id AS "sourceMessageId", source_session_id AS "sourceSessionId", content,
  content_hash AS "contentHash", category::text AS category, confidence,
  embedding_model AS "embeddingModel", superseded_by_id AS "supersededById",
  superseded_at AS "supersededAt", expires_at AS "expiresAt", created_at AS "createdAt",
  updated_at AS "updatedAt"`;

export function toVectorLiteral(v: readonly number[]): string {
  if (v.length !== EMBEDDING_DIMENSIONS || !v.every(Number.isFinite)) {
    throw new Error(`expected ${EMBEDDING_DIMENSIONS} finite numbers, got ${v.length}`);
  }
  return `[${v.join(',')}]`;
}

/** Case, whitespace and trailing punctuation do not make a memory new. */
export function contentHash(content: string): string {
  const normal = content
    .toLowerCase()
    .replace(/\s+/g, ' ')
    .replace(/[\s.!?]+$/, '')
    .trim();
  return createHash('sha256').update(normal).digest('hex');
}

export interface LayerScope {
  userId: string;
  /** null: the profile layer. */
  instanceId: string | null;
}

function layerFilter(scope: LayerScope): Prisma.Sql {
  return scope.instanceId === null
    ? Prisma.sql`user_id = ${scope.userId}::uuid AND instance_id IS NULL`
    : Prisma.sql`user_id = ${scope.userId}::uuid AND instance_id = ${scope.instanceId}::uuid`;
}

/**
 * Nearest live memories of one layer by cosine similarity. Only rows embedded by `model`
 * are compared: vectors of different models live in different spaces.
 */
export async function searchLayer(
  db: Db,
  scope: LayerScope,
  query: {
    embedding: readonly number[];
    model: string;
    k: number;
    minScore?: number;
    offset?: number;
    category?: MemoryCategory;
  },
): Promise<ScoredMemory[]> {
  if (query.k <= 0) return [];
  const vec = toVectorLiteral(query.embedding);
  const rows = await db.$queryRaw<(MemoryRow & { score: number })[]>`
    SELECT ${COLUMNS}, 1 - (embedding <=> ${vec}::vector) AS score
    FROM (
      SELECT * FROM memories
      WHERE ${layerFilter(scope)}
        AND superseded_by_id IS NULL
        AND (expires_at IS NULL OR expires_at > now())
        AND embedding_model = ${query.model}
        AND embedding IS NOT NULL
        AND (${query.category ?? null}::memory_category IS NULL OR category = ${query.category ?? null}::memory_category)
      -- OFFSET 0 fences the planner: the user's rows come from the btree index and are ranked
      -- exactly. Ordering through the shared HNSW index would filter by user after the
      -- approximate scan and can return fewer than k rows (even none) for a user who has them.
      OFFSET 0
    ) AS mine
    ORDER BY embedding <=> ${vec}::vector, id
    LIMIT ${query.k} OFFSET ${query.offset ?? 0}`;
  const min = query.minScore ?? -1;
  return rows
    .map(({ score, ...memory }) => ({ memory, score: Number(score) }))
    .filter((r) => r.score >= min);
}

export interface NewMemory {
  scope: LayerScope;
  content: string;
  category: MemoryCategory;
  confidence: number | null;
  embedding: readonly number[];
  embeddingModel: string;
  sourceMessageId: string | null;
  sourceSessionId: string | null;
}

/**
 * Inserts a memory unless a live one with the same normalised content exists in the layer
 * (unique partial index). Returns the new row's id, or null when it was a duplicate.
 */
export async function insertMemory(db: Db, m: NewMemory): Promise<string | null> {
  const id = randomUUID();
  const rows = await db.$queryRaw<{ id: string }[]>`
    INSERT INTO memories (id, user_id, instance_id, source_message_id, source_session_id, content,
      content_hash, category, confidence, embedding, embedding_model, created_at, updated_at)
    VALUES (${id}::uuid, ${m.scope.userId}::uuid, ${m.scope.instanceId}::uuid,
      ${m.sourceMessageId}::uuid, ${m.sourceSessionId}::uuid, ${m.content},
      ${contentHash(m.content)}, ${m.category}::memory_category, ${m.confidence},
      ${toVectorLiteral(m.embedding)}::vector, ${m.embeddingModel}, now(), now())
    ON CONFLICT (user_id, (COALESCE(instance_id, '00000000-0000-0000-0000-000000000000'::uuid)),
      content_hash) WHERE superseded_by_id IS NULL
    DO NOTHING
    RETURNING id`;
  return rows[0]?.id ?? null;
}

/** Marks `oldId` superseded by `newId` if it is still live in the same layer. */
export async function supersedeMemory(
  db: Db,
  scope: LayerScope,
  oldId: string,
  newId: string,
): Promise<MemoryRow | null> {
  const rows = await db.$queryRaw<MemoryRow[]>`
    UPDATE memories SET superseded_by_id = ${newId}::uuid, superseded_at = now(), updated_at = now()
    WHERE id = ${oldId}::uuid AND ${layerFilter(scope)} AND superseded_by_id IS NULL
    RETURNING ${COLUMNS}`;
  return rows[0] ?? null;
}

export async function findMemoriesByIds(db: Db, ids: readonly string[]): Promise<MemoryRow[]> {
  if (ids.length === 0) return [];
  return db.$queryRaw<MemoryRow[]>`
    SELECT ${COLUMNS} FROM memories WHERE id = ANY(${[...ids]}::uuid[])`;
}

export function layerOf(row: { instanceId: string | null }): MemoryLayer {
  return row.instanceId === null ? 'PROFILE' : 'RELATIONSHIP';
}
