import { createHash, randomUUID } from 'node:crypto';
import { Prisma, type PrismaClient } from '@prisma/client';
import type { RawQuery } from '../db/raw.js';
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
function queryTerms(text: string, vec?: string): Prisma.Sql {
  // NUL is the one character Postgres text cannot hold; it separates words like a space.
  const clean = text.replaceAll('\u0000', ' ');
  // The query vector, once: every distance in the statement reads it from here (a 512-number
  // literal per use would travel and be parsed once per use).
  const vector = vec === undefined ? Prisma.empty : Prisma.sql`, ${vec}::vector AS v`;
  return Prisma.sql`SELECT array_agg(lexeme) AS lexemes,
      string_agg('''' || replace(replace(lexeme, '\\', '\\\\'), '''', '''''') || '''', ' | ')::tsquery AS tsq
      ${vector}
    FROM (SELECT lexeme FROM unnest(to_tsvector(${TEXT_SEARCH_CONFIG}, ${clean})) AS t
      ORDER BY lexeme LIMIT ${MAX_QUERY_TERMS}) AS t`;
}

/** The layer's key in memory_layer_stats (migration 20261204020000_memory_layer_stats). */
const PROFILE_KEY = '00000000-0000-0000-0000-000000000000';

/**
 * One layer's counts as a one-row CTE body (n = live memories, total = their lexical-document
 * length), read from memory_layer_stats: the database keeps them per layer, so no search reads
 * every row of a large layer to learn them. A layer without a row is empty (n = 0).
 */
function layerStats(scope: LayerScope): Prisma.Sql {
  const key = scope.instanceId ?? PROFILE_KEY;
  return Prisma.sql`SELECT COALESCE(max(live_rows), 0)::float8 AS n,
      COALESCE(max(lexical_length), 0)::float8 AS total
    FROM memory_layer_stats WHERE user_id = ${scope.userId}::uuid AND instance_key = ${key}::uuid`;
}

/** Live memories per layer of one user's turn (memory_layer_stats; 0 for an empty layer). */
export interface LayerSizes {
  profile: number;
  relationship: number;
}

/**
 * One layer's live memories as a scalar subquery (0 without a stats row), for a statement that
 * reads them alongside other work (the turn's opening statement, src/chat/turn-store.ts).
 * `instanceId`: an SQL uuid expression for a relationship layer, null for the profile.
 */
export function liveRowsSql(userId: string, instanceId: Prisma.Sql | null): Prisma.Sql {
  const key = instanceId ?? Prisma.sql`${PROFILE_KEY}::uuid`;
  return Prisma.sql`(SELECT COALESCE(max(live_rows), 0)::int FROM memory_layer_stats
    WHERE user_id = ${userId}::uuid AND instance_key = ${key})`;
}

/** A user's profile and relationship layer sizes, on their own (one statement). */
export async function readLayerSizes(
  query: RawQuery,
  scope: { userId: string; instanceId: string },
): Promise<LayerSizes> {
  const [row] = (await query(
    Prisma.sql`SELECT ${liveRowsSql(scope.userId, null)} AS profile,
      ${liveRowsSql(scope.userId, Prisma.sql`${scope.instanceId}::uuid`)} AS relationship`,
  )) as LayerSizes[];
  return row ?? { profile: 0, relationship: 0 };
}

/** CTE names of one layer's part of a statement: `p` + suffix, so two layers can share one. */
function names(prefix: string) {
  const id = (suffix: string) => Prisma.raw(`${prefix}_${suffix}`);
  return {
    stats: id('stats'),
    matches: id('matches'),
    layer: id('layer'),
    bm25: id('bm25'),
    near: id('near'),
    byMeaning: id('by_meaning'),
    byWords: id('by_words'),
    hits: id('hits'),
  };
}

/**
 * BM25 over the rows of one layer that hold a query lexeme, as CTEs `<p>_stats` … `<p>_bm25(id,
 * score)` (the statement's `query` CTE is queryTerms). Only rows matching at least one query
 * lexeme get a score. Two sources of postings, by the layer's path (`annMinRows`, as for the
 * meaning side):
 * - `exact` (a small layer, or a history search, which also reads superseded rows): the rows
 *   the filter keeps, read through the per-user btree, each testing its own document; the
 *   postings are the document cut down to the query's lexemes (setweight + ts_filter, so
 *   nothing else is unnested). Statistics: df = the matched rows holding the lexeme.
 * - `index` (a large layer, live rows): the query lexemes' postings in `memory_terms` (one
 *   index-only scan, no memory row read; migration 20261206010000_memory_terms). Statistics:
 *   df = the layer's live memories holding the lexeme, as a search engine counts them; the
 *   filter does not narrow them, it only removes rows from the results, after the ranking
 *   (`rankedFilter`). The two agree whenever the filter keeps every live row holding a query
 *   word: for a turn, unless some of the layer's memories are expired, not embedded yet, or
 *   embedded by another model (during a re-embedding).
 *
 * - IDF: ln(1 + (N − df + 0.5) / (df + 0.5)), N = the layer's live memories
 *   (memory_layer_stats; at least the rows matched, which a history search may widen).
 * - TF = the lexeme's positions in the memory's stored document.
 * - Length: the document's distinct lexemes (length(tsvector)) against the layer's average
 *   (memory_layer_stats). Memories are a sentence or two, where nearly every word occurs once,
 *   so this stands in for the token count without storing one.
 */
function bm25Ctes(
  prefix: string,
  scope: LayerScope,
  where: Prisma.Sql,
  path: LayerPath,
  annMinRows: number,
): Prisma.Sql {
  const t = names(prefix);
  const gate = (op: '<' | '>=') =>
    path === 'either'
      ? Prisma.sql`AND (SELECT n FROM ${t.stats}) ${Prisma.raw(op)} ${annMinRows}`
      : Prisma.empty;
  const matches = Prisma.sql`, ${t.matches} AS MATERIALIZED (
    SELECT id, COALESCE(length(search_tsv), 0) AS len,
      ts_filter(setweight(search_tsv, 'A', query.lexemes), '{a}') AS hits
    FROM ${candidates(where)}, query
    WHERE mine.search_tsv @@ query.tsq ${gate('<')}
  )`;
  // Postings (id, len, tf, df): df counts the lexeme's postings, by a window over all of them
  // (exact) or over each lexeme's own index range (index: no sort of the postings by lexeme).
  const exact = Prisma.sql`SELECT m.id, m.len, COALESCE(cardinality(p.positions), 1) AS tf,
        count(*) OVER (PARTITION BY p.lexeme) AS df
      FROM ${t.matches} AS m CROSS JOIN LATERAL unnest(m.hits) AS p`;
  const layer = scope.instanceId ?? scope.userId;
  const indexed = Prisma.sql`SELECT t.id, t.len, t.tf, t.df
      FROM query CROSS JOIN LATERAL unnest(query.lexemes) AS q(lexeme)
      CROSS JOIN LATERAL (
        SELECT memory_id AS id, len, tf, count(*) OVER () AS df FROM memory_terms
        WHERE term = memory_term_key(${layer}::uuid, q.lexeme)
      ) AS t
      WHERE true ${gate('>=')}`;
  const postings =
    path === 'exact'
      ? exact
      : path === 'index'
        ? indexed
        : Prisma.sql`${exact} UNION ALL ${indexed}`;
  // Rows matched by the exact source (none on the index path): N is at least that many.
  const matched =
    path === 'index'
      ? Prisma.sql`(SELECT 0::float8 AS rows, 1::float8 AS avglen)`
      : Prisma.sql`(SELECT count(*)::float8 AS rows, COALESCE(avg(len), 1)::float8 AS avglen
        FROM ${t.matches})`;
  return Prisma.sql`${t.stats} AS MATERIALIZED (${layerStats(scope)})${path === 'index' ? Prisma.empty : matches},
  ${t.layer} AS (
    SELECT GREATEST(s.n, m.rows) AS n,
      GREATEST(CASE WHEN s.n > 0 THEN s.total / s.n ELSE m.avglen END, 1) AS avgdl
    FROM ${t.stats} AS s, ${matched} AS m
  ), ${t.bm25} AS (
    SELECT id, sum(
      ln(1 + (l.n - df + 0.5) / (df + 0.5)) * tf * ${BM25_K1 + 1}::float8
        / (tf + ${BM25_K1}::float8 * (1 - ${BM25_B}::float8 + ${BM25_B}::float8 * len / l.avgdl))
    ) AS score
    FROM (
      SELECT id, len::float8 AS len, tf::float8 AS tf, df::float8 AS df
      FROM (${postings}) AS postings
    ) AS postings, ${t.layer} AS l
    GROUP BY id
  )`;
}

/**
 * The word side's path: a history search reads superseded rows, which `memory_terms` does not
 * hold, so it tests each row of the layer whatever its size.
 */
function wordPath(path: LayerPath, filter: MemoryFilter): LayerPath {
  return filter.includeSuperseded === true ? 'exact' : path;
}

/**
 * On the index path BM25 ranks the layer's postings before any filter (bm25Ctes): a ranked row
 * is kept only if its memory passes the search's filter, tested by a correlated primary-key
 * lookup (a subplan, never turned into a join) on rows already in rank order, so a LIMIT above
 * stops after the first rows that pass. `ranked` names the row's relation. Nothing on the
 * exact path, whose rows passed the filter before they were scored.
 */
function rankedFilter(path: LayerPath, where: Prisma.Sql, ranked: string): Prisma.Sql {
  if (path === 'exact') return Prisma.empty;
  return Prisma.sql`WHERE (SELECT true FROM memories AS f
      WHERE f.id = ${Prisma.raw(ranked)}.id AND ${where})`;
}

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
  // The index path ranks before filtering (bm25Ctes): this statement's WHERE filters, on the
  // rows it reads anyway.
  const rows = await db.$queryRaw<(MemoryRow & { score: number })[]>`
    WITH query AS MATERIALIZED (${queryTerms(query.text)}),
    ${bm25Ctes('l', scope, where, wordPath('either', query), DEFAULT_FUSION.annMinRows)}
    SELECT ${COLUMNS}, l_bm25.score FROM l_bm25 JOIN memories USING (id)
    WHERE ${where}
    ORDER BY l_bm25.score DESC, id
    LIMIT ${query.k} OFFSET ${query.offset ?? 0}`;
  return rows.map(({ score, ...memory }) => ({ memory, score: Number(score) }));
}

/**
 * The meaning side of one layer: its `depth` nearest rows (`<p>_near(id, distance)`), by one of
 * two paths, by the layer's live-memory count (`path`, layerPath):
 * - below `annMinRows`: exact. The layer's rows come from the per-user btree indexes, fenced by
 *   OFFSET 0, and every distance is computed. Ordering through the shared HNSW index would
 *   filter by user after an approximate scan: for a small layer scattered among everyone's
 *   rows it finds almost none of them (BENCHMARKS.md §2).
 * - from `annMinRows` on: the layer's partial HNSW index with pgvector's iterative scan and the
 *   session's `hnsw.ef_search` (src/db/settings.ts); approximate, a few milliseconds at any
 *   size, where the exact scan grows by ~2 µs per row. Its depth is `annVectorDepth` (at most
 *   `vectorDepth`; fusion.ts says why). `ORDER BY` the distance alone: a second
 *   sort key keeps PostgreSQL 15 off the index. Where the index cannot serve (a filter on
 *   superseded rows, which it does not hold) the planner falls back to an exact plan.
 * Path `either` (size unknown): both, each gated by a condition on the one-row stats CTE; the
 * planner makes it a one-time filter, so only one runs, but both are parsed and planned.
 */
function nearestCtes(
  prefix: string,
  where: Prisma.Sql,
  maxDistance: number | null,
  path: LayerPath,
  fusion: FusionSettings,
): Prisma.Sql {
  const t = names(prefix);
  const { annMinRows, vectorDepth } = fusion;
  const annDepth = Math.min(vectorDepth, fusion.annVectorDepth);
  const near =
    maxDistance === null ? Prisma.empty : Prisma.sql`AND distance <= ${maxDistance}::float8`;
  const v = Prisma.sql`(SELECT v FROM query)`;
  const annNear =
    maxDistance === null
      ? Prisma.empty
      : Prisma.sql`AND embedding <=> ${v} <= ${maxDistance}::float8`;
  const gate = (op: '<' | '>=') =>
    path === 'either'
      ? Prisma.sql`AND (SELECT n FROM ${t.stats}) ${Prisma.raw(op)} ${annMinRows}`
      : Prisma.empty;
  const exact = Prisma.sql`(SELECT id, distance FROM (
        SELECT id, embedding <=> ${v} AS distance FROM ${candidates(where)}
      ) AS exact
      WHERE true ${gate('<')} ${near}
      ORDER BY distance, id LIMIT ${vectorDepth})`;
  const indexed = Prisma.sql`(SELECT id, embedding <=> ${v} AS distance FROM memories
      WHERE ${where} ${gate('>=')} ${annNear}
      ORDER BY embedding <=> ${v} LIMIT ${annDepth})`;
  const nearest =
    path === 'exact'
      ? exact
      : path === 'index'
        ? indexed
        : Prisma.sql`${exact}
    UNION ALL
    ${indexed}`;
  return Prisma.sql`${t.near} AS (
    ${nearest}
  ), ${t.byMeaning} AS (
    SELECT id, row_number() OVER (ORDER BY distance, id) AS rank FROM ${t.near}
  )`;
}

/**
 * How a layer is ranked: `exact` (every row's distance and word test, for a layer below
 * `annMinRows` live memories), `index` (HNSW and memory_terms, from `annMinRows` on), or `either` when
 * the caller does not know the layer's size: then the statement holds both and the layer's
 * stats row picks one at run time (a one-time filter).
 */
export type LayerPath = 'exact' | 'index' | 'either';

/** The path of a layer of `liveRows` live memories (unknown: decided in the statement). */
export function layerPath(liveRows: number | undefined, annMinRows: number): LayerPath {
  if (liveRows === undefined) return 'either';
  return liveRows < annMinRows ? 'exact' : 'index';
}

export interface HybridLayerQuery {
  scope: LayerScope;
  k: number;
  offset?: number;
  /**
   * The layer's live memories (memory_layer_stats), when the caller has read them already (a
   * turn does, in the statement that opens it): the statement then holds only the path that
   * size takes (layerPath). Unknown: both paths, picked in the statement.
   */
  liveRows?: number;
}

/**
 * One layer's hybrid ranking as CTEs ending in `<p>_hits(id, score, ord)`: rows ord offset+1 …
 * offset+k of the fused order.
 */
function hybridCtes(
  prefix: string,
  layer: HybridLayerQuery,
  query: VectorQuery & { text: string },
  fusion: FusionSettings,
): Prisma.Sql {
  const t = names(prefix);
  const where = searchable(layer.scope, query.model, query);
  const maxDistance = query.minScore === undefined ? null : 1 - query.minScore;
  const wv = fusion.vectorWeight;
  const wl = fusion.lexicalWeight;
  const rrfK = fusion.rrfK;
  // The best possible fused score (first on both sides): scores are divided by it.
  const best = (wv + wl) / (rrfK + 1);
  if (!(best > 0)) throw new Error('fusion weights must not both be 0');
  const offset = layer.offset ?? 0;
  const path = layerPath(layer.liveRows, fusion.annMinRows);
  const words = wordPath(path, query);
  return Prisma.sql`${bm25Ctes(prefix, layer.scope, where, words, fusion.annMinRows)},
  ${nearestCtes(prefix, where, maxDistance, path, fusion)},
  ${t.byWords} AS (
    SELECT id, rank() OVER (ORDER BY text_score DESC) AS rank,
      row_number() OVER (ORDER BY text_score DESC, meaning_rank, id) AS position
    FROM (
      SELECT * FROM (
        SELECT b.id, b.score AS text_score, m.rank AS meaning_rank
        FROM ${t.bm25} AS b LEFT JOIN ${t.byMeaning} AS m USING (id)
        ORDER BY text_score DESC, meaning_rank, id OFFSET 0
      ) AS ranked
      ${rankedFilter(words, where, 'ranked')}
      ORDER BY text_score DESC, meaning_rank, id LIMIT ${fusion.lexicalDepth}
    ) AS matching
  ), ${t.hits} AS (
    SELECT id, score, ord FROM (
      SELECT id, score, row_number() OVER (ORDER BY score DESC, position, meaning_rank, id) AS ord
      FROM (
        SELECT id, w.position, m.rank AS meaning_rank,
          (COALESCE(${wv}::float8 / (${rrfK}::float8 + m.rank), 0)
            + COALESCE(${wl}::float8 / (${rrfK}::float8 + w.rank), 0)) / ${best}::float8 AS score
        FROM ${t.byMeaning} AS m FULL JOIN ${t.byWords} AS w USING (id)
      ) AS fused
    ) AS ordered
    WHERE ord > ${offset} AND ord <= ${offset + layer.k}
  )`;
}

/**
 * Hybrid search of several layers in one statement, the ranking of every chat turn's recall
 * (both layers) and of memory search (one): per layer, the `vectorDepth` nearest rows by
 * meaning and the `lexicalDepth` best rows by words (BM25, any query word), fused by weighted
 * reciprocal rank (src/memory/fusion.ts). Words find what meaning ranks low (names, rare
 * words, dates in words); meaning finds what shares no word.
 *
 * - One round trip for every layer; each layer's part is independent (its own N, its own
 *   exact-or-index path, nearestCtes).
 * - Both sides of a layer see exactly the same rows (one filter). `minScore` bounds the meaning
 *   side only (a cosine threshold means nothing for a word match).
 * - BM25 ties share a rank (equal documents tell the fusion nothing); which of them make the
 *   cut is decided by their rank on the meaning side.
 * - Equal fused scores go to rows that match the words, then to the nearer by meaning.
 * - The score is the fused score scaled to (0, 1]: 1 = first on both sides; a row found by one
 *   side only scores at most that side's share of the weights.
 *
 * Returns one list per layer, in the order given.
 */
export async function searchLayersHybrid(
  db: Db | RawQuery,
  layers: readonly HybridLayerQuery[],
  query: VectorQuery & { text: string },
  fusion: FusionSettings = DEFAULT_FUSION,
): Promise<ScoredMemory[][]> {
  const wanted = layers.map((layer, i) => ({ layer, i })).filter(({ layer }) => layer.k > 0);
  const out: ScoredMemory[][] = layers.map(() => []);
  if (wanted.length === 0) return out;
  const vec = toVectorLiteral(query.embedding);
  const parts = wanted.map(({ layer, i }) => hybridCtes(`h${i}`, layer, query, fusion));
  const hits = Prisma.join(
    wanted.map(
      ({ i }) =>
        Prisma.sql`SELECT ${i}::int AS layer, id, score, ord FROM ${Prisma.raw(`h${i}_hits`)}`,
    ),
    ' UNION ALL ',
  );
  const statement = Prisma.sql`
    WITH query AS MATERIALIZED (${queryTerms(query.text, vec)}),
    ${Prisma.join(parts, ', ')}
    SELECT h.layer, ${COLUMNS}, h.score FROM (${hits}) AS h JOIN memories USING (id)
    ORDER BY h.layer, h.ord`;
  // The turn passes the driver (src/db/raw.ts: Prisma's compile step skipped); its rows have the
  // same shape (timestamptz as Date, float as number, the layer index as int).
  //
  // Prepared when every layer is known to be small (path `exact`): planning the ~20 CTEs of two
  // layers cost several times their execution for a typical user (BENCHMARKS.md §2), and a
  // prepared statement is planned once per connection. Its generic plan (PostgreSQL takes it
  // from the sixth execution on) is right for every small layer: the user's rows through the
  // per-user btree, ranked exactly. Never with an `index` or `either` layer: a generic plan does
  // not know how many rows the user has, expects few, and reads the large layer through the
  // btree and sorts it instead of walking the HNSW index (measured: 4x slower than planned per
  // call for a 50 000-memory user).
  const prepare = wanted.every(
    ({ layer }) => layerPath(layer.liveRows, fusion.annMinRows) === 'exact',
  );
  const rows = (
    typeof db === 'function' ? await db(statement, { prepare }) : await db.$queryRaw(statement)
  ) as (MemoryRow & { layer: number; score: number })[];
  for (const { layer, score, ...memory } of rows) {
    out[layer]?.push({ memory, score: Number(score) });
  }
  return out;
}

/** searchLayersHybrid for one layer (memory search). */
export async function searchLayerHybrid(
  db: Db,
  scope: LayerScope,
  query: VectorQuery & { text: string },
  fusion: FusionSettings = DEFAULT_FUSION,
): Promise<ScoredMemory[]> {
  const [rows] = await searchLayersHybrid(
    db,
    [{ scope, k: query.k, offset: query.offset }],
    query,
    fusion,
  );
  return rows ?? [];
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
