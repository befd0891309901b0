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
  /** When the remembered thing happened or will happen; createdAt is when it was stored. */
  occurredAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface ScoredMemory {
  memory: MemoryRow;
  score: number;
}

/** Every column but the vector, aliased to MemoryRow's field names. */
export const COLUMNS = Prisma.sql`id, user_id AS "userId", instance_id AS "instanceId",
  source_message_id AS "sourceMessageId", source_session_id AS "sourceSessionId", content,
  content_hash AS "contentHash", category::text AS category, confidence,
  embedding_model AS "embeddingModel", superseded_by_id AS "supersededById",
  superseded_at AS "supersededAt", expires_at AS "expiresAt", occurred_at AS "occurredAt",
  created_at AS "createdAt", updated_at AS "updatedAt"`;

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

/** Narrows a search beyond its layer. */
export interface MemoryFilter {
  category?: MemoryCategory;
  /** Inclusive lower bound on `created_at`. */
  createdAfter?: Date;
  /** Exclusive upper bound on `created_at`, so consecutive windows never share a row. */
  createdBefore?: Date;
  /** Also rows a correction superseded (history views; recall never sets this). */
  includeSuperseded?: boolean;
  /** Inclusive lower bound on `occurred_at` (rows without one never match a bound). */
  occurredAfter?: Date;
  /** Exclusive upper bound on `occurred_at`. */
  occurredBefore?: Date;
}

export interface VectorQuery extends MemoryFilter {
  embedding: readonly number[];
  /** Only rows embedded by this model are candidates: vectors of two models never meet. */
  model: string;
  k: number;
  minScore?: number;
  offset?: number;
}

/**
 * The caller's filter as SQL conditions, appended only when set: a `$n IS NULL OR …` predicate
 * would hide them from the planner in a generic plan.
 */
export function filterConditions(filter: MemoryFilter): Prisma.Sql[] {
  const conditions: Prisma.Sql[] = [];
  if (!filter.includeSuperseded) conditions.push(Prisma.sql`superseded_by_id IS NULL`);
  if (filter.category) {
    conditions.push(Prisma.sql`category = ${filter.category}::memory_category`);
  }
  // ISO strings with an explicit zone: a driver's own Date encoding may drop it.
  if (filter.createdAfter) {
    conditions.push(Prisma.sql`created_at >= ${filter.createdAfter.toISOString()}::timestamptz`);
  }
  if (filter.createdBefore) {
    conditions.push(Prisma.sql`created_at < ${filter.createdBefore.toISOString()}::timestamptz`);
  }
  if (filter.occurredAfter) {
    conditions.push(Prisma.sql`occurred_at >= ${filter.occurredAfter.toISOString()}::timestamptz`);
  }
  if (filter.occurredBefore) {
    conditions.push(Prisma.sql`occurred_at < ${filter.occurredBefore.toISOString()}::timestamptz`);
  }
  return conditions;
}

/** The rows of one layer a search may compare with a vector of `model`. */
function searchable(scope: LayerScope, model: string, filter: MemoryFilter): Prisma.Sql {
  return Prisma.join(
    [
      layerFilter(scope),
      Prisma.sql`embedding_model = ${model}`,
      Prisma.sql`embedding IS NOT NULL`,
      Prisma.sql`(expires_at IS NULL OR expires_at > now())`,
      ...filterConditions(filter),
    ],
    ' AND ',
  );
}

/**
 * The user's candidate rows, fenced by OFFSET 0: they come from the per-layer btree index and
 * are ranked exactly. Ordering through the shared HNSW index would filter by user after the
 * approximate scan and can return fewer than k rows (even none) for a user who has them.
 */
function candidates(where: Prisma.Sql): Prisma.Sql {
  return Prisma.sql`(SELECT * FROM memories WHERE ${where} OFFSET 0) AS mine`;
}

/**
 * Nearest memories of one layer by cosine similarity (the score, -1..1). Live rows only
 * unless the filter says otherwise.
 */
export async function searchLayer(
  db: Db,
  scope: LayerScope,
  query: VectorQuery,
): Promise<ScoredMemory[]> {
  if (query.k <= 0) return [];
  const vec = toVectorLiteral(query.embedding);
  const rows = await db.$queryRaw<(MemoryRow & { score: number })[]>`
    SELECT ${COLUMNS}, 1 - (embedding <=> ${vec}::vector) AS score
    FROM ${candidates(searchable(scope, query.model, query))}
    ORDER BY embedding <=> ${vec}::vector, id
    LIMIT ${query.k} OFFSET ${query.offset ?? 0}`;
  const min = query.minScore ?? -1;
  return rows
    .map(({ score, ...memory }) => ({ memory, score: Number(score) }))
    .filter((r) => r.score >= min);
}

/**
 * Reciprocal rank fusion: a row ranked r by one side earns 1 / (RRF_K + r) from it. 60 is the
 * constant of Cormack, Clarke & Büttcher (SIGIR 2009), the usual default: large enough that
 * the top few ranks of one side cannot drown the other side's agreement.
 */
export const RRF_K = 60;
/** Rows each side contributes before fusion, so a hybrid search returns at most twice this. */
export const HYBRID_CANDIDATES = 50;
/**
 * Must be the configuration of the `search_tsv` column (migration 20261124010000_memory_search,
 * which says why English): a query parsed otherwise would miss stemmed words.
 */
const TEXT_SEARCH_CONFIG = Prisma.sql`'english'::regconfig`;
/** Fused scores are divided by the best possible one (rank 1 on both sides): 1 is the top. */
const RRF_SCALE = (RRF_K + 1) / 2;

/**
 * Hybrid search of one layer: the HYBRID_CANDIDATES nearest rows by meaning and the
 * HYBRID_CANDIDATES best full-text matches of `text`, fused by reciprocal rank. Words find what
 * meaning ranks low (names, rare words); meaning finds what shares no word with the query.
 *
 * - The text goes through websearch_to_tsquery, which accepts any string (quotes, `or` and
 *   `-word` are syntax; everything else is a word): user input is never a tsquery error.
 * - Both sides see exactly the same rows (one filter).
 * - Full-text ties share a rank (a word in every row tells the fusion nothing); which of them
 *   make the cut is decided by their rank on the meaning side (reused, not recomputed: the
 *   distance of every match would double the work for a word every memory contains).
 * - Equal fused scores go to rows that match the words: a match means every query word is in
 *   the memory, while some row is always nearest by meaning, relevant or not.
 * - The score is the fused score scaled to (0, 1]: 1 = first on both sides; a row found by one
 *   side only scores at most 0.5.
 */
export async function searchLayerHybrid(
  db: Db,
  scope: LayerScope,
  query: VectorQuery & { text: string },
): Promise<ScoredMemory[]> {
  if (query.k <= 0) return [];
  const vec = toVectorLiteral(query.embedding);
  const where = searchable(scope, query.model, query);
  // NUL is the one character Postgres text cannot hold; it separates words like a space.
  const text = query.text.replaceAll('\u0000', ' ');
  const tsquery = Prisma.sql`websearch_to_tsquery(${TEXT_SEARCH_CONFIG}, ${text})`;
  const rows = await db.$queryRaw<(MemoryRow & { score: number })[]>`
    WITH by_meaning AS (
      SELECT id, row_number() OVER (ORDER BY distance, id) AS rank
      FROM (
        SELECT id, embedding <=> ${vec}::vector AS distance FROM ${candidates(where)}
        ORDER BY distance, id LIMIT ${HYBRID_CANDIDATES}
      ) AS nearest
    ), by_words AS (
      SELECT id, rank() OVER (ORDER BY text_rank DESC) AS rank,
        row_number() OVER (ORDER BY text_rank DESC, meaning_rank, id) AS position
      FROM (
        SELECT id, ts_rank_cd(search_tsv, ${tsquery}) AS text_rank, by_meaning.rank AS meaning_rank
        FROM memories LEFT JOIN by_meaning USING (id)
        WHERE ${where} AND search_tsv @@ ${tsquery}
        ORDER BY text_rank DESC, meaning_rank, id LIMIT ${HYBRID_CANDIDATES}
      ) AS matching
    )
    SELECT ${COLUMNS},
      (COALESCE(1::float8 / (${RRF_K}::int + by_meaning.rank), 0)
        + COALESCE(1::float8 / (${RRF_K}::int + by_words.rank), 0)) * ${RRF_SCALE}::float8 AS score
    FROM by_meaning FULL JOIN by_words USING (id) JOIN memories USING (id)
    ORDER BY score DESC, by_words.position, by_meaning.rank, id
    LIMIT ${query.k} OFFSET ${query.offset ?? 0}`;
  return rows.map(({ score, ...memory }) => ({ memory, score: Number(score) }));
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
  occurredAt?: Date | null;
  /** The domain clock's now (defaults to the database's). */
  createdAt?: Date;
}

/**
 * Inserts a memory unless a live one with the same normalised content exists in the layer
 * (unique partial index). Returns the new row's id, or null when it was a duplicate.
 */
export async function insertMemory(db: Db, m: NewMemory): Promise<string | null> {
  const id = randomUUID();
  const rows = await db.$queryRaw<{ id: string }[]>`
    INSERT INTO memories (id, user_id, instance_id, source_message_id, source_session_id, content,
      content_hash, category, confidence, embedding, embedding_model, occurred_at, created_at,
      updated_at)
    VALUES (${id}::uuid, ${m.scope.userId}::uuid, ${m.scope.instanceId}::uuid,
      ${m.sourceMessageId}::uuid, ${m.sourceSessionId}::uuid, ${m.content},
      ${contentHash(m.content)}, ${m.category}::memory_category, ${m.confidence},
      ${toVectorLiteral(m.embedding)}::vector, ${m.embeddingModel},
      ${m.occurredAt?.toISOString() ?? null}::timestamptz,
      COALESCE(${m.createdAt?.toISOString() ?? null}::timestamptz, now()),
      COALESCE(${m.createdAt?.toISOString() ?? null}::timestamptz, now()))
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
