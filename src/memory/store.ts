import { createHash, randomUUID } from 'node:crypto';
import { Prisma, type PrismaClient } from '@prisma/client';
import { EMBEDDING_DIMENSIONS } from '../providers/embeddings/types.js';
import { DEFAULT_FUSION, type FusionSettings } from './fusion.js';
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
 * Must be the configuration of `memory_search_document` (migration
 * 20261203010000_lexical_document, which says why English also for other languages): a query
 * parsed otherwise would miss stemmed words.
 */
const TEXT_SEARCH_CONFIG = Prisma.sql`'english'::regconfig`;
/** Distinct query lexemes a search considers (a long message is bounded, not refused). */
export const MAX_QUERY_TERMS = 64;
/** Okapi BM25's textbook constants: term-frequency saturation and length normalisation. */
const BM25_K1 = 1.2;
const BM25_B = 0.75;

/**
 * The query's lexemes (the memory documents' configuration: stemmed, stop words dropped) and
 * their OR as a tsquery, so ANY of them may match. The tsquery is assembled from lexemes the
 * server produced, each quoted as tsquery input requires (' and \ escaped): user text is a
 * bound parameter and never becomes query syntax. No lexeme (only stop words): NULL, which
 * matches nothing.
 */
function queryTerms(text: string): Prisma.Sql {
  // NUL is the one character Postgres text cannot hold; it separates words like a space.
  const clean = text.replaceAll('\u0000', ' ');
  return Prisma.sql`SELECT array_agg(lexeme) AS lexemes,
      string_agg('''' || replace(replace(lexeme, '\', '\\'), '''', '''''') || '''', ' | ')::tsquery AS tsq
    FROM (SELECT lexeme FROM unnest(to_tsvector(${TEXT_SEARCH_CONFIG}, ${clean})) AS t
      ORDER BY lexeme LIMIT ${MAX_QUERY_TERMS}) AS t`;
}

/**
 * BM25 over the rows of `mine` (CTE columns: id, len, hits), as SQL CTEs ending in `bm25(id,
 * score)`: only rows matching at least one query lexeme get a score.
 *
 * - IDF from the user's own layer: N = its rows (those the search may return), df = the rows
 *   among them holding the lexeme: ln(1 + (N − df + 0.5) / (df + 0.5)).
 * - TF = the lexeme's positions in the memory's stored document (`hits`: the document cut
 *   down to the query's lexemes with setweight + ts_filter, so nothing else is unnested).
 * - Length: the document's distinct lexemes (length(tsvector)), against the layer's average.
 *   Memories are a sentence or two, where nearly every word occurs once, so this stands in for
 *   the token count without storing one.
 */
/**
 * BM25_CTES with the matching rows (columns id, len, hits) read from `matches` instead of
 * `mine`; `mine` still gives N and the average length (columns len).
 */
function bm25Ctes(matches: Prisma.Sql): Prisma.Sql {
  return Prisma.sql`layer AS (
    SELECT count(*)::float8 AS n, GREATEST(COALESCE(avg(len), 1), 1)::float8 AS avgdl FROM mine
  ), postings AS MATERIALIZED (
    SELECT m.id, m.len::float8 AS len, p.lexeme,
      COALESCE(cardinality(p.positions), 1)::float8 AS tf
    FROM ${matches} AS m CROSS JOIN LATERAL unnest(m.hits) AS p
    WHERE m.hits IS NOT NULL
  ), ${BM25_SCORE_CTES}`;
}

const BM25_SCORE_CTES = Prisma.sql`idf AS (
    SELECT lexeme, ln(1 + (layer.n - count(*) + 0.5) / (count(*) + 0.5)) AS idf
    FROM postings, layer GROUP BY lexeme, layer.n
  ), bm25 AS (
    SELECT id, sum(
      idf.idf * tf * ${BM25_K1 + 1}::float8
        / (tf + ${BM25_K1}::float8 * (1 - ${BM25_B}::float8 + ${BM25_B}::float8 * len / layer.avgdl))
    ) AS score
    FROM postings JOIN idf USING (lexeme), layer
    GROUP BY id
  )`;

const BM25_CTES = bm25Ctes(Prisma.sql`mine`);

/** A memory's lexical columns for BM25_CTES; `query` is the CTE of queryTerms. */
const LEXICAL_COLUMNS = Prisma.sql`COALESCE(length(search_tsv), 0) AS len,
  CASE WHEN search_tsv @@ query.tsq
    THEN ts_filter(setweight(search_tsv, 'A', query.lexemes), '{a}') END AS hits`;

export interface LexicalQuery extends MemoryFilter {
  text: string;
  /** Only rows embedded by this model, as in every search (the rows a vector search sees). */
  model: string;
  k: number;
  offset?: number;
}

/**
 * Words only: BM25 over one layer (the lexical side of searchLayerHybrid, on its own). Any
 * query lexeme may match; the score is the BM25 sum. One statement.
 */
export async function searchLayerLexical(
  db: Db,
  scope: LayerScope,
  query: LexicalQuery,
): Promise<ScoredMemory[]> {
  if (query.k <= 0) return [];
  const where = searchable(scope, query.model, query);
  const rows = await db.$queryRaw<(MemoryRow & { score: number })[]>`
    WITH query AS MATERIALIZED (${queryTerms(query.text)}),
    mine AS (
      SELECT id, ${LEXICAL_COLUMNS} FROM ${candidates(where)}, query
    ), ${BM25_CTES}
    SELECT ${COLUMNS}, bm25.score FROM bm25 JOIN memories USING (id)
    ORDER BY bm25.score DESC, id
    LIMIT ${query.k} OFFSET ${query.offset ?? 0}`;
  return rows.map(({ score, ...memory }) => ({ memory, score: Number(score) }));
}

/**
 * Hybrid search of one layer, the ranking of every chat turn's recall and of memory search:
 * the `vectorDepth` nearest rows by meaning and the `lexicalDepth` best rows by words (BM25,
 * any query word), fused by weighted reciprocal rank (src/memory/fusion.ts). Words find what
 * meaning ranks low (names, rare words, dates in words); meaning finds what shares no word.
 *
 * - One statement. The meaning side reads the layer's rows through the per-user btree (as
 *   searchLayer), with each row's distance and document length (N and the average length need
 *   every row). The word side reads only the rows that hold a query lexeme, found through the
 *   GIN index on the lexical document: testing every row of a 30 000-memory layer with `@@`
 *   cost as much again as the vector scan (BENCHMARKS.md §2), the GIN lookup a few milliseconds.
 * - Both sides see exactly the same rows (one filter). `minScore` bounds the meaning side only
 *   (a cosine threshold means nothing for a word match).
 * - BM25 ties share a rank (equal documents tell the fusion nothing); which of them make the
 *   cut is decided by their rank on the meaning side.
 * - Equal fused scores go to rows that match the words, then to the nearer by meaning.
 * - The score is the fused score scaled to (0, 1]: 1 = first on both sides; a row found by one
 *   side only scores at most that side's share of the weights.
 */
export async function searchLayerHybrid(
  db: Db,
  scope: LayerScope,
  query: VectorQuery & { text: string },
  fusion: FusionSettings = DEFAULT_FUSION,
): Promise<ScoredMemory[]> {
  if (query.k <= 0) return [];
  const vec = toVectorLiteral(query.embedding);
  const where = searchable(scope, query.model, query);
  const maxDistance = query.minScore === undefined ? null : 1 - query.minScore;
  const wv = fusion.vectorWeight;
  const wl = fusion.lexicalWeight;
  const rrfK = fusion.rrfK;
  // The best possible fused score (first on both sides): scores are divided by it.
  const best = (wv + wl) / (rrfK + 1);
  if (!(best > 0)) throw new Error('fusion weights must not both be 0');
  const rows = await db.$queryRaw<(MemoryRow & { score: number })[]>`
    WITH query AS MATERIALIZED (${queryTerms(query.text)}),
    mine AS (
      SELECT id, embedding <=> ${vec}::vector AS distance,
        COALESCE(length(search_tsv), 0) AS len
      FROM ${candidates(where)}
    ), matches AS MATERIALIZED (
      SELECT id, ${LEXICAL_COLUMNS} FROM memories, query
      WHERE ${where} AND search_tsv @@ query.tsq
    ), ${bm25Ctes(Prisma.sql`matches`)}, by_meaning AS (
      SELECT id, row_number() OVER (ORDER BY distance, id) AS rank
      FROM (
        SELECT id, distance FROM mine
        ${maxDistance === null ? Prisma.empty : Prisma.sql`WHERE distance <= ${maxDistance}::float8`}
        ORDER BY distance, id LIMIT ${fusion.vectorDepth}
      ) AS nearest
    ), by_words AS (
      SELECT id, rank() OVER (ORDER BY text_score DESC) AS rank,
        row_number() OVER (ORDER BY text_score DESC, meaning_rank, id) AS position
      FROM (
        SELECT bm25.id, bm25.score AS text_score, by_meaning.rank AS meaning_rank
        FROM bm25 LEFT JOIN by_meaning USING (id)
        ORDER BY text_score DESC, meaning_rank, id LIMIT ${fusion.lexicalDepth}
      ) AS matching
    )
    SELECT ${COLUMNS},
      (COALESCE(${wv}::float8 / (${rrfK}::float8 + by_meaning.rank), 0)
        + COALESCE(${wl}::float8 / (${rrfK}::float8 + by_words.rank), 0)) / ${best}::float8 AS score
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
  /** When it happened or will happen (an event's date), if known. */
  occurredAt?: Date | null;
  /** When the user told it: the domain clock's now, or an import's/benchmark's older date (default: the database's now()). */
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
