/**
 * Recall at scale (DESIGN.md "Indexes", "Benchmarks"): two-layer recall latency through the
 * project's own `recallForTurn` → `searchLayer` (profile k=3 and relationship k=8,
 * concurrently), on synthetic memories spread over many users plus one heavy user; recall of
 * the query path against an exact brute-force ranking; the EXPLAIN (ANALYZE, BUFFERS) plan
 * actually used; and the same under alternative strategies: planner settings around the
 * project's query, and a bench-only index-servable form of it (no OFFSET 0 fence, no `, id`
 * tie-breaker) under HNSW with several `hnsw.ef_search` and pgvector 0.8 `hnsw.iterative_scan`,
 * to show what the shared partial HNSW indexes would give (and lose) per user.
 *
 *   bash scripts/ci/with-postgres.sh sh -c 'npx tsx bench/recall-scale.ts --database-url "$PG_ADMIN_URL"'
 *   npx tsx bench/recall-scale.ts                 # PGlite only (small sizes)
 *
 * Options: --sizes 1000,100000 (real Postgres; 1000000 is optional and slow) --plain-sizes 100000
 *   (the same with the embedding column's storage set to PLAIN) --pglite-sizes 1000,10000
 *   --heavy 50000 (one heavy user, in every Postgres size ≥ 2×heavy) --pglite-heavy 5000
 *   --per-user 50 --queries 100 --heavy-queries 20 --strategies default,nt-hnsw-ef40,…
 *   --plain-strategies default --uniform --seed 42 --json out.json --max-seconds 900
 *
 * With --database-url, every size runs in its own scratch database (CREATE DATABASE … / DROP
 * DATABASE … afterwards), so the role needs CREATEDB; nothing else on the server is touched.
 */
import { parseArgs } from 'node:util';
import { Prisma, type PrismaClient } from '@prisma/client';
import { type Database, openDatabase } from '../src/db/client.js';
import { rawQueryOf } from '../src/db/raw.js';
import { silentLogger } from '../src/logger.js';
import { DEFAULT_FUSION } from '../src/memory/fusion.js';
import { recallForTurn } from '../src/memory/recall.js';
import {
  type LayerSizes,
  readLayerSizes,
  searchLayer,
  searchLayerHybrid,
  toVectorLiteral,
} from '../src/memory/store.js';
import { Metrics } from '../src/metrics.js';
import type { Embedder } from '../src/providers/embeddings/types.js';
import { deadline, emitJson, log, machineInfo, round, summarize, table } from './lib/common.js';
import {
  accessPath,
  type BenchDatabase,
  createScratchDatabase,
  databaseUrlFrom,
  explain,
  openBenchDatabase,
  withSettings,
} from './lib/db.js';
import { BENCH_MODEL, type BenchUser, type Loaded, loadSynthetic } from './lib/synthetic.js';

const PROFILE_K = 3;
const RELATIONSHIP_K = 8;

/**
 * `project`: the project's own turn recall (recallForTurn → searchLayersHybrid: meaning and
 * words fused), whatever src has now, given the layer sizes as the turn's opening statement
 * reads them (each layer's path fixed, the statement prepared).
 * `project-unsized`: the same without the sizes: both paths in the statement, not prepared
 * (what memory search runs).
 * `project-exact`: the same with RECALL_ANN_MIN_ROWS = ∞ (every layer exact): the reference
 * the index path of large layers is measured against.
 * `vector`: the turn recall before hybrid, searchLayer (vector only) on both layers: the
 * baseline the hybrid turn is compared with in the same run.
 * `no-tiebreak`: bench-only SQL, searchLayer's conditions with neither a subquery fence nor the
 * `, id` tie-breaker — `ORDER BY embedding <=> $v LIMIT k` straight on `memories`, the form
 * pgvector's HNSW index can serve (on PostgreSQL 15 a second sort key already prevents it).
 */
type QueryForm =
  | 'project'
  | 'project-unsized'
  | 'project-exact'
  | 'per-layer'
  | 'vector'
  | 'no-tiebreak';

/** The turn's fusion with every layer ranked exactly (no index path): the reference for it. */
const EXACT_FUSION = { ...DEFAULT_FUSION, annMinRows: Number.MAX_SAFE_INTEGER };

interface Strategy {
  name: string;
  query: QueryForm;
  description: string;
  settings: Record<string, string>;
}

// enable_sort=off adds a huge "disable" cost, which would also switch JIT compilation on for
// every query (~200 ms each): strategies that use it turn JIT off.
const FORCE_HNSW = { enable_sort: 'off', jit: 'off' };

const STRATEGIES: Strategy[] = [
  {
    name: 'default',
    query: 'project',
    description:
      'as shipped: recallForTurn (hybrid: vector + BM25), planner choice, server defaults',
    settings: {},
  },
  {
    name: 'ef200',
    query: 'project',
    description:
      'as shipped, with hnsw.ef_search = 200 for the index path (the default until 3 December 2026)',
    settings: { 'hnsw.ef_search': '200' },
  },
  {
    name: 'ef40',
    query: 'project',
    description: 'as shipped, with hnsw.ef_search = 40 (pgvector default) for the index path',
    settings: { 'hnsw.ef_search': '40' },
  },
  {
    name: 'unsized',
    query: 'project-unsized',
    description:
      'the hybrid turn without the layer sizes known beforehand: both paths in the statement, picked by the stats row, never prepared (memory search does this)',
    settings: {},
  },
  {
    name: 'exact-hybrid',
    query: 'project-exact',
    description: 'the hybrid turn with every layer ranked exactly (RECALL_ANN_MIN_ROWS = ∞)',
    settings: {},
  },
  {
    name: 'per-layer',
    query: 'per-layer',
    description:
      'the hybrid ranking as one statement per layer, both at once (two connections), instead of one statement for both',
    settings: {},
  },
  {
    name: 'vector-only',
    query: 'vector',
    description:
      'baseline: searchLayer (vector only) on both layers, the turn recall before hybrid',
    settings: {},
  },
  {
    name: 'default+iter',
    query: 'project',
    description: 'searchLayer with hnsw.iterative_scan=relaxed_order',
    settings: { 'hnsw.iterative_scan': 'relaxed_order' },
  },
  {
    name: 'prefer-hnsw',
    query: 'project',
    description:
      'searchLayer with enable_sort=off: pushes the planner towards HNSW (must stay exact)',
    settings: FORCE_HNSW,
  },
  {
    name: 'nt-default',
    query: 'no-tiebreak',
    description: 'index-servable form, planner choice, server defaults',
    settings: {},
  },
  {
    name: 'nt-hnsw-ef40',
    query: 'no-tiebreak',
    description: 'index-servable form, HNSW forced, ef_search=40 (default), no iterative scan',
    settings: { ...FORCE_HNSW, 'hnsw.ef_search': '40' },
  },
  {
    name: 'nt-hnsw-ef200',
    query: 'no-tiebreak',
    description: 'index-servable form, HNSW forced, ef_search=200',
    settings: { ...FORCE_HNSW, 'hnsw.ef_search': '200' },
  },
  {
    name: 'nt-hnsw-iter-relaxed',
    query: 'no-tiebreak',
    description: 'index-servable form, HNSW forced, iterative_scan=relaxed_order (ef 40)',
    settings: { ...FORCE_HNSW, 'hnsw.iterative_scan': 'relaxed_order' },
  },
  {
    name: 'nt-hnsw-iter-strict',
    query: 'no-tiebreak',
    description: 'index-servable form, HNSW forced, iterative_scan=strict_order (ef 40)',
    settings: { ...FORCE_HNSW, 'hnsw.iterative_scan': 'strict_order' },
  },
  {
    name: 'nt-default+iter',
    query: 'no-tiebreak',
    description: 'index-servable form, planner choice, iterative_scan=relaxed_order',
    settings: { 'hnsw.iterative_scan': 'relaxed_order' },
  },
];

interface Query {
  user: BenchUser;
  vector: number[];
  /** The turn's text (the lexical side of hybrid recall). */
  text: string;
  /** The user's layer sizes, as a turn reads them before its recall. */
  liveRows: LayerSizes;
  exactProfile: string[];
  exactRelationship: string[];
  /** The hybrid turn's answer with every layer ranked exactly (project-exact). */
  exactHybrid: { profile: string[]; relationship: string[] };
}

interface Measured {
  latencyMs: ReturnType<typeof summarize>;
  /** mean |returned ∩ exact top-k| / |exact top-k| */
  recallProfile: number;
  recallRelationship: number;
  /** mean overlap with the exact hybrid answer (profile and relationship layers together) */
  recallVsExactHybrid: number;
  /** queries where a layer returned fewer rows than min(k, rows in the layer) */
  shortResults: number;
  queries: number;
}

/** Embedder stand-in that returns the prepared query vector: recallForTurn itself is unchanged. */
function fixedEmbedder(): Embedder & { next: number[] } {
  return {
    provider: 'bench',
    model: BENCH_MODEL,
    next: [],
    async embed() {
      return [this.next];
    },
  };
}

// The column list of store.ts's searchLayer, so both forms move the same bytes.
const COLUMNS = Prisma.sql`id, user_id AS "userId", instance_id AS "instanceId",
  source_message_id AS "sourceMessageId", source_session_id AS "sourceSessionId", content,
  content_hash AS "contentHash", category::text AS category, confidence,
  embedding_model AS "embeddingModel", superseded_by_id AS "supersededById",
  superseded_at AS "supersededAt", expires_at AS "expiresAt", created_at AS "createdAt",
  updated_at AS "updatedAt"`;

/** searchLayer's conditions, unfenced, ordered by distance only. Bench-only: not the project's query. */
async function searchNoTiebreak(
  prisma: PrismaClient,
  scope: { userId: string; instanceId: string | null },
  embedding: readonly number[],
  k: number,
): Promise<{ id: string }[]> {
  const vec = toVectorLiteral(embedding);
  const filter =
    scope.instanceId === null
      ? Prisma.sql`user_id = ${scope.userId}::uuid AND instance_id IS NULL`
      : Prisma.sql`user_id = ${scope.userId}::uuid AND instance_id = ${scope.instanceId}::uuid`;
  return prisma.$queryRaw<{ id: string }[]>`
    SELECT ${COLUMNS}, 1 - (embedding <=> ${vec}::vector) AS score
    FROM memories
    WHERE ${filter}
      AND superseded_by_id IS NULL
      AND (expires_at IS NULL OR expires_at > now())
      AND embedding_model = ${BENCH_MODEL}
      AND embedding IS NOT NULL
      AND (${null}::memory_category IS NULL OR category = ${null}::memory_category)
    ORDER BY embedding <=> ${vec}::vector
    LIMIT ${k}`;
}

type RecallFn = (q: Query) => Promise<{ profile: string[]; relationship: string[] }>;

function recallFunction(db: Database, form: QueryForm): RecallFn {
  if (form === 'vector') {
    return async (q) => {
      const query = { embedding: q.vector, model: BENCH_MODEL };
      const [profile, relationship] = await Promise.all([
        searchLayer(
          db.prisma,
          { userId: q.user.userId, instanceId: null },
          { ...query, k: PROFILE_K },
        ),
        searchLayer(db.prisma, q.user, { ...query, k: RELATIONSHIP_K }),
      ]);
      return {
        profile: profile.map((r) => r.memory.id),
        relationship: relationship.map((r) => r.memory.id),
      };
    };
  }
  if (form === 'per-layer') {
    return async (q) => {
      const query = { embedding: q.vector, model: BENCH_MODEL, text: q.text, minScore: -1 };
      const [profile, relationship] = await Promise.all([
        searchLayerHybrid(
          db.prisma,
          { userId: q.user.userId, instanceId: null },
          { ...query, k: PROFILE_K },
          DEFAULT_FUSION,
        ),
        searchLayerHybrid(db.prisma, q.user, { ...query, k: RELATIONSHIP_K }, DEFAULT_FUSION),
      ]);
      return {
        profile: profile.map((r) => r.memory.id),
        relationship: relationship.map((r) => r.memory.id),
      };
    };
  }
  if (form === 'no-tiebreak') {
    return async (q) => {
      const [profile, relationship] = await Promise.all([
        searchNoTiebreak(
          db.prisma,
          { userId: q.user.userId, instanceId: null },
          q.vector,
          PROFILE_K,
        ),
        searchNoTiebreak(db.prisma, q.user, q.vector, RELATIONSHIP_K),
      ]);
      return { profile: profile.map((r) => r.id), relationship: relationship.map((r) => r.id) };
    };
  }
  const embedder = fixedEmbedder();
  const metrics = new Metrics({ defaultMetrics: false });
  const fusion = form === 'project-exact' ? EXACT_FUSION : DEFAULT_FUSION;
  return async (q) => {
    embedder.next = q.vector;
    const result = await recallForTurn(
      { db: rawQueryOf(db.driver), embedder, logger: silentLogger, metrics },
      {
        userId: q.user.userId,
        instanceId: q.user.instanceId,
        liveRows: form === 'project-unsized' ? undefined : q.liveRows,
      },
      { message: q.text },
      // minScore -1: the score filter runs in JS after the query, so it would only hide rows.
      { profileK: PROFILE_K, relationshipK: RELATIONSHIP_K, minScore: -1, fusion },
    );
    if (result.error) throw new Error(`recall failed: ${result.error}`);
    return {
      profile: result.profile.map((m) => m.memory.id),
      relationship: result.relationship.map((m) => m.memory.id),
    };
  };
}

/** Exact top-k of one layer: ORDER BY an expression no index can serve. */
async function exactTopK(
  bench: BenchDatabase,
  user: BenchUser,
  layer: 'profile' | 'relationship',
  v: string,
  k: number,
): Promise<string[]> {
  const filter = layer === 'profile' ? 'instance_id IS NULL' : 'instance_id = $3::uuid';
  const rows = await bench.query<{ id: string }>(
    `SELECT id FROM memories WHERE user_id = $1::uuid AND ${filter} AND superseded_by_id IS NULL
       AND embedding_model = '${BENCH_MODEL}' AND embedding IS NOT NULL
     ORDER BY (embedding <=> $2::vector) + 0, id LIMIT ${k}`,
    layer === 'profile' ? [user.userId, v] : [user.userId, v, user.instanceId],
  );
  return rows.map((r) => r.id);
}

function overlap(got: readonly string[], exact: readonly string[]): number {
  if (exact.length === 0) return 1;
  const set = new Set(got);
  return exact.filter((id) => set.has(id)).length / exact.length;
}

async function measure(
  recall: RecallFn,
  queries: readonly Query[],
  warmup: number,
): Promise<Measured> {
  const latencies: number[] = [];
  let rp = 0;
  let rr = 0;
  let short = 0;
  let vsHybrid = 0;
  for (const [i, q] of queries.entries()) {
    const t0 = performance.now();
    const result = await recall(q);
    const ms = performance.now() - t0;
    if (i < warmup) continue;
    latencies.push(ms);
    rp += overlap(result.profile, q.exactProfile);
    rr += overlap(result.relationship, q.exactRelationship);
    vsHybrid += overlap(
      [...result.profile, ...result.relationship],
      [...q.exactHybrid.profile, ...q.exactHybrid.relationship],
    );
    if (
      result.profile.length < Math.min(PROFILE_K, q.user.profile) ||
      result.relationship.length < Math.min(RELATIONSHIP_K, q.user.relationship)
    ) {
      short += 1;
    }
  }
  const n = Math.max(1, latencies.length);
  return {
    latencyMs: summarize(latencies),
    recallProfile: rp / n,
    recallRelationship: rr / n,
    recallVsExactHybrid: vsHybrid / n,
    shortResults: short,
    queries: latencies.length,
  };
}

/** The plan a query form actually gets for one layer of one user under `settings`. */
async function planFor(
  bench: BenchDatabase,
  form: QueryForm,
  user: BenchUser,
  layer: 'profile' | 'relationship',
  vector: number[],
  text: string,
  settings: Record<string, string>,
): Promise<string> {
  const capture = bench.tap.captureNext(
    (sql) => sql.includes('FROM memories') && sql.includes('<=>'),
  );
  const scope = { userId: user.userId, instanceId: layer === 'profile' ? null : user.instanceId };
  const k = layer === 'profile' ? PROFILE_K : RELATIONSHIP_K;
  if (
    form === 'project' ||
    form === 'project-unsized' ||
    form === 'project-exact' ||
    form === 'per-layer'
  ) {
    // One layer, size unknown (the `either` form): the plan shown is the path the stats pick.
    await searchLayerHybrid(
      bench.db.prisma,
      scope,
      { embedding: vector, model: BENCH_MODEL, k, text, minScore: -1 },
      form === 'project-exact' ? EXACT_FUSION : DEFAULT_FUSION,
    );
  } else if (form === 'vector') {
    await searchLayer(bench.db.prisma, scope, { embedding: vector, model: BENCH_MODEL, k });
  } else {
    await searchNoTiebreak(bench.db.prisma, scope, vector, k);
  }
  const q = await capture;
  return explain(
    bench,
    q,
    'ANALYZE, BUFFERS',
    Object.entries(settings).map(([key, v]) => `SET LOCAL ${key} = '${v}'`),
  );
}

interface SizeResult {
  label: string;
  database: 'postgres' | 'pglite';
  server: { version: string; pgvector: string; sharedBuffers: string };
  storage: 'external' | 'plain';
  total: number;
  users: number;
  perUser: number;
  heavy: number;
  load: Loaded['timings'] & { insertRowsPerSecond: number; indexes: Loaded['indexes'] };
  tableSizeMB: { table: number; toast: number; indexes: number; hnsw: number; postings: number };
  indexSizesMB: Record<string, number>;
  strategies: Record<string, { typical: Measured; heavy: Measured | null }>;
  plans: Record<string, Record<string, { path: string; plan: string }>>;
}

interface SizeOptions {
  kind: 'postgres' | 'pglite';
  adminUrl?: string;
  total: number;
  heavy: number;
  perUser: number;
  queries: number;
  heavyQueries: number;
  strategies: Strategy[];
  seed: number;
  uniform: boolean;
  storage: 'external' | 'plain';
}

async function runSize(options: SizeOptions): Promise<SizeResult> {
  const heavy = options.total >= 2 * options.heavy ? options.heavy : 0;
  const users = Math.max(1, Math.round((options.total - heavy) / options.perUser));
  const label = `${options.kind} ${options.total}${options.storage === 'plain' ? ' (STORAGE PLAIN)' : ''}`;
  const scratch =
    options.kind === 'postgres' && options.adminUrl
      ? await createScratchDatabase(options.adminUrl, 'bench_recall')
      : null;
  const bench = await openBenchDatabase({ url: scratch?.url, poolSize: 10 });
  const opened: Database[] = [];
  try {
    log(
      `${label}: loading ${users} users × ${options.perUser}${heavy ? ` + heavy user ${heavy}` : ''}`,
    );
    const loaded = await loadSynthetic(
      bench,
      {
        users,
        perUser: options.perUser,
        profileShare: 0.3,
        heavy,
        heavyProfileShare: 0.4,
        topics: 256,
        uniform: options.uniform,
        seed: options.seed,
        batch: bench.kind === 'postgres' ? 2000 : 500,
        storage: options.storage,
      },
      log,
    );
    const t = loaded.timings;
    log(
      `  inserted ${loaded.total} rows in ${t.insertSeconds.toFixed(1)} s, HNSW build ${t.indexSeconds.toFixed(1)} s, analyze ${t.analyzeSeconds.toFixed(1)} s`,
    );
    const [size] = await bench.query<{ t: number; toast: number; ix: number; postings: number }>(
      `SELECT pg_relation_size('memories')::float8 / 1048576 AS t,
              COALESCE(pg_total_relation_size(NULLIF(reltoastrelid, 0)), 0)::float8 / 1048576 AS toast,
              pg_indexes_size('memories')::float8 / 1048576 AS ix,
              -- memory_terms (heap + index): every live memory's postings, read for large layers.
              COALESCE(pg_total_relation_size(to_regclass('memory_terms')), 0)::float8 / 1048576
                AS postings
       FROM pg_class WHERE relname = 'memories'`,
    );
    const indexSizes = await bench.query<{ name: string; mb: number }>(
      `SELECT i.relname AS name, pg_relation_size(i.oid)::float8 / 1048576 AS mb
       FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
       WHERE t.relname = 'memories' ORDER BY 2 DESC`,
    );
    const hnswMB = indexSizes.filter((i) => i.name.includes('hnsw')).reduce((a, i) => a + i.mb, 0);

    // Query sets (shared by every strategy) and their exact answers.
    const exactHybrid = recallFunction(bench.db, 'project-exact');
    const makeQueries = async (pick: () => BenchUser, n: number): Promise<Query[]> => {
      const out: Query[] = [];
      for (let i = 0; i < n; i++) {
        const user = pick();
        const vector = loaded.vectors.next();
        // A chat message's worth of words (a turn's recall text: message + previous reply).
        const text = loaded.texts.sentence(8, 20);
        // The literal searchLayer sends (full precision), so ties and near-ties rank alike.
        const v = toVectorLiteral(vector);
        out.push({
          user,
          vector,
          text,
          // What the turn's opening statement reads for recall (untimed here, as in a turn).
          liveRows: await readLayerSizes(rawQueryOf(bench.db.driver), user),
          exactProfile: await exactTopK(bench, user, 'profile', v, PROFILE_K),
          exactRelationship: await exactTopK(bench, user, 'relationship', v, RELATIONSHIP_K),
          exactHybrid: { profile: [], relationship: [] },
        });
        const last = out[out.length - 1] as Query;
        last.exactHybrid = await exactHybrid(last);
      }
      return out;
    };
    let cursor = 0;
    const typicalQueries = await makeQueries(() => {
      cursor = (cursor + 7919) % loaded.users.length;
      return loaded.users[cursor] as BenchUser;
    }, options.queries);
    const heavyQueries = loaded.heavy
      ? await makeQueries(() => loaded.heavy as BenchUser, options.heavyQueries)
      : null;

    const results: SizeResult['strategies'] = {};
    const plans: SizeResult['plans'] = {};
    const samplePlanVector = loaded.vectors.next();
    const samplePlanText = loaded.texts.sentence(8, 20);
    // Warm caches and JIT once, so the first strategy measured is not the coldest.
    await measure(
      recallFunction(bench.db, 'project'),
      [...typicalQueries.slice(0, 40), ...(heavyQueries ?? []).slice(0, 5)],
      Number.POSITIVE_INFINITY,
    );
    for (const strategy of options.strategies) {
      let db: Database;
      if (bench.kind === 'postgres' && scratch) {
        db = await openDatabase({
          url: withSettings(scratch.url, strategy.settings),
          poolSize: 10,
          logger: silentLogger,
          migrate: false,
        });
        opened.push(db);
      } else {
        db = bench.db;
        await bench.query('RESET ALL');
        for (const [k, v] of Object.entries(strategy.settings))
          await bench.query(`SET ${k} = '${v}'`);
      }
      const recall = recallFunction(db, strategy.query);
      const typical = await measure(
        recall,
        typicalQueries,
        Math.min(10, Math.floor(options.queries / 10)),
      );
      const heavyResult = heavyQueries
        ? await measure(recall, heavyQueries, Math.min(3, Math.floor(options.heavyQueries / 10)))
        : null;
      if (bench.kind === 'pglite') await bench.query('RESET ALL');
      if (db !== bench.db) await db.close();
      results[strategy.name] = { typical, heavy: heavyResult };

      const p: Record<string, { path: string; plan: string }> = {};
      const typicalUser = loaded.users[0] as BenchUser;
      for (const layer of ['profile', 'relationship'] as const) {
        const plan = await planFor(
          bench,
          strategy.query,
          typicalUser,
          layer,
          samplePlanVector,
          samplePlanText,
          strategy.settings,
        );
        p[`typical-${layer}`] = { path: accessPath(plan), plan };
        if (loaded.heavy) {
          const hp = await planFor(
            bench,
            strategy.query,
            loaded.heavy,
            layer,
            samplePlanVector,
            samplePlanText,
            strategy.settings,
          );
          p[`heavy-${layer}`] = { path: accessPath(hp), plan: hp };
        }
      }
      plans[strategy.name] = p;
      log(
        `  ${strategy.name}: typical p50 ${typical.latencyMs.p50.toFixed(2)} ms` +
          (heavyResult
            ? `, heavy p50 ${heavyResult.latencyMs.p50.toFixed(2)} ms p95 ${heavyResult.latencyMs.p95.toFixed(2)} ms recall@8 ${heavyResult.recallRelationship.toFixed(3)} vs exact hybrid ${heavyResult.recallVsExactHybrid.toFixed(3)}`
            : ''),
      );
    }
    return {
      label,
      database: bench.kind,
      server: bench.server,
      storage: options.storage,
      total: loaded.total,
      users: loaded.users.length + (loaded.heavy ? 1 : 0),
      perUser: options.perUser,
      heavy,
      load: {
        ...t,
        insertRowsPerSecond: Math.round(loaded.total / t.insertSeconds),
        indexes: loaded.indexes,
      },
      indexSizesMB: Object.fromEntries(indexSizes.map((i) => [i.name, round(i.mb, 1)])),
      tableSizeMB: {
        hnsw: round(hnswMB, 1),
        table: round(size?.t ?? 0, 1),
        toast: round(size?.toast ?? 0, 1),
        indexes: round(size?.ix ?? 0, 1),
        postings: round(size?.postings ?? 0, 1),
      },
      strategies: results,
      plans,
    };
  } finally {
    for (const db of opened) await db.close().catch(() => {});
    await bench.close();
    await scratch?.drop();
  }
}

function pickStrategies(names: string | undefined, fallback: Strategy[]): Strategy[] {
  if (!names) return fallback;
  return names.split(',').map((name) => {
    const s = STRATEGIES.find((x) => x.name === name.trim());
    if (!s)
      throw new Error(
        `unknown strategy ${name}; known: ${STRATEGIES.map((x) => x.name).join(', ')}`,
      );
    return s;
  });
}

async function main() {
  const { values } = parseArgs({
    options: {
      'database-url': { type: 'string' },
      sizes: { type: 'string', default: '1000,100000' },
      'plain-sizes': { type: 'string', default: '100000' },
      'pglite-sizes': { type: 'string', default: '1000,10000' },
      heavy: { type: 'string', default: '50000' },
      'pglite-heavy': { type: 'string', default: '5000' },
      'per-user': { type: 'string', default: '50' },
      queries: { type: 'string', default: '100' },
      'heavy-queries': { type: 'string', default: '20' },
      strategies: { type: 'string' },
      'plain-strategies': { type: 'string', default: 'default' },
      uniform: { type: 'boolean', default: false },
      seed: { type: 'string', default: '42' },
      json: { type: 'string' },
      'max-seconds': { type: 'string', default: '900' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'usage: tsx bench/recall-scale.ts [--database-url URL] [--sizes 1000,100000[,1000000]]\n' +
        '  [--plain-sizes 100000] [--pglite-sizes 1000,10000] [--heavy 50000] [--pglite-heavy 5000]\n' +
        '  [--per-user 50] [--queries 100] [--heavy-queries 20] [--strategies a,b] [--plain-strategies default]\n' +
        `  [--uniform] [--seed 42] [--json out.json] [--max-seconds 900]\n  strategies: ${STRATEGIES.map((s) => s.name).join(', ')}\n` +
        '  --sizes "" / --plain-sizes "" / --pglite-sizes "" skip a group.\n',
    );
    return;
  }
  deadline(Number(values['max-seconds']), 'bench/recall-scale');
  const list = (s: string) =>
    s
      .split(',')
      .map((x) => Number(x.trim()))
      .filter((x) => x > 0);
  const strategies = pickStrategies(values.strategies, STRATEGIES);
  const plainStrategies = pickStrategies(values['plain-strategies'], [STRATEGIES[0] as Strategy]);
  const url = databaseUrlFrom(values['database-url']);
  const common = {
    perUser: Number(values['per-user']),
    queries: Number(values.queries),
    heavyQueries: Number(values['heavy-queries']),
    seed: Number(values.seed),
    uniform: values.uniform,
  };
  const started = performance.now();
  const runs: SizeResult[] = [];
  for (const total of list(values['pglite-sizes'])) {
    runs.push(
      await runSize({
        kind: 'pglite',
        total,
        heavy: Number(values['pglite-heavy']),
        strategies,
        storage: 'external',
        ...common,
      }),
    );
  }
  if (!url) log('no --database-url / DATABASE_URL: real-Postgres sizes skipped');
  for (const total of url ? list(values.sizes) : []) {
    runs.push(
      await runSize({
        kind: 'postgres',
        adminUrl: url,
        total,
        heavy: Number(values.heavy),
        strategies,
        storage: 'external',
        ...common,
      }),
    );
  }
  for (const total of url ? list(values['plain-sizes']) : []) {
    runs.push(
      await runSize({
        kind: 'postgres',
        adminUrl: url,
        total,
        heavy: Number(values.heavy),
        strategies: plainStrategies,
        storage: 'plain',
        ...common,
      }),
    );
  }
  const seconds = (performance.now() - started) / 1000;

  // Estimate for 1M rows from the largest real-Postgres run (insert is linear; HNSW build
  // grows a little faster than linear: scaled by n·log n).
  const largest = runs
    .filter((r) => r.database === 'postgres' && r.storage === 'external')
    .sort((a, b) => b.total - a.total)[0];
  let estimate1M: {
    insertSeconds: number;
    indexSeconds: number;
    fitsDefaultBudget: boolean;
  } | null = null;
  if (largest && largest.total < 1_000_000) {
    const f = 1_000_000 / largest.total;
    const indexF = f * (Math.log(1_000_000) / Math.log(largest.total));
    const insertSeconds = largest.load.insertSeconds * f;
    const indexSeconds = largest.load.indexSeconds * indexF;
    estimate1M = {
      insertSeconds: Math.round(insertSeconds),
      indexSeconds: Math.round(indexSeconds),
      fitsDefaultBudget: insertSeconds + indexSeconds < 300,
    };
  }

  // Report.
  const out: string[] = [];
  const m = machineInfo();
  out.push(
    `Recall at scale — machine: ${m.nproc} cores (${m.cpuModel}), Node ${m.node}, load average at end ${m.loadAverage.join(' ')}; source ${m.revision}`,
  );
  out.push(
    `Synthetic 512-dim vectors (${values.uniform ? 'uniform noise' : '256 topic centres + noise'}); one recall = both layers concurrently (profile k=${PROFILE_K}, relationship k=${RELATIONSHIP_K}); ` +
      'recall@k = overlap with an exact brute-force top-k; short = queries where a layer returned fewer than k rows.',
  );
  out.push('Strategies:');
  for (const s of STRATEGIES) {
    if (strategies.includes(s) || plainStrategies.includes(s))
      out.push(`  ${s.name.padEnd(21)} ${s.description}`);
  }
  for (const r of runs) {
    out.push('');
    out.push(
      `== ${r.label} — ${r.server.version}, pgvector ${r.server.pgvector}, shared_buffers ${r.server.sharedBuffers}: ${r.total} memories, ${r.users} users` +
        `${r.heavy ? ` (one heavy user: ${r.heavy})` : ''}; heap ${r.tableSizeMB.table} MB, TOAST ${r.tableSizeMB.toast} MB, indexes ${r.tableSizeMB.indexes} MB (HNSW ${r.tableSizeMB.hnsw} MB), postings ${r.tableSizeMB.postings} MB; ` +
        `insert ${r.load.insertSeconds.toFixed(1)} s (${r.load.insertRowsPerSecond}/s), HNSW build ${r.load.indexSeconds.toFixed(1)} s`,
    );
    const base = r.strategies.default;
    const rows: unknown[][] = [];
    for (const [name, x] of Object.entries(r.strategies)) {
      for (const [who, v] of [
        ['typical', x.typical],
        ['heavy', x.heavy],
      ] as const) {
        if (!v) continue;
        const b = who === 'typical' ? base?.typical : base?.heavy;
        rows.push([
          name,
          who,
          v.latencyMs.p50,
          v.latencyMs.p95,
          b ? `${(v.latencyMs.p50 / b.latencyMs.p50).toFixed(2)}x` : '',
          v.recallProfile,
          v.recallRelationship,
          v.recallVsExactHybrid,
          `${v.shortResults}/${v.queries}`,
          r.plans[name]?.[`${who}-relationship`]?.path ?? '',
        ]);
      }
    }
    out.push(
      table(
        [
          'strategy',
          'user',
          'p50 ms',
          'p95 ms',
          'p50/default',
          'recall@3 prof',
          'recall@8 rel',
          'vs exact hybrid',
          'short',
          'relationship-layer plan',
        ],
        rows,
      ),
    );
  }
  for (const r of runs) {
    const d = r.plans.default;
    if (!d || r.total < 10_000) continue;
    for (const key of ['typical-relationship', 'heavy-relationship', 'heavy-profile']) {
      const p = d[key];
      if (!p) continue;
      out.push('');
      out.push(`Plan used by searchLayer (default), ${r.label}, ${key}:`);
      out.push(p.plan);
    }
  }
  if (estimate1M) {
    out.push('');
    out.push(
      `1M memories (optional): estimated ~${estimate1M.insertSeconds} s to insert + ~${estimate1M.indexSeconds} s of HNSW build on this machine — ` +
        (estimate1M.fitsDefaultBudget ? 'fits' : 'does NOT fit') +
        ' the ~5 min default budget; measure with --sizes 1000000 --plain-sizes "" --pglite-sizes "" --max-seconds 3600.',
    );
  }
  out.push(`total ${seconds.toFixed(0)} s`);
  process.stdout.write(`${out.join('\n')}\n`);

  const clean = (x: Measured) => ({
    ...x,
    latencyMs: Object.fromEntries(Object.entries(x.latencyMs).map(([k, v]) => [k, round(v, 3)])),
    recallProfile: round(x.recallProfile, 4),
    recallRelationship: round(x.recallRelationship, 4),
  });
  await emitJson(
    {
      benchmark: 'recall-scale',
      machine: machineInfo(),
      profileK: PROFILE_K,
      relationshipK: RELATIONSHIP_K,
      vectors: values.uniform ? 'uniform' : '256 topic centres + equal-norm noise',
      strategies: Object.fromEntries(
        STRATEGIES.map((s) => [
          s.name,
          { query: s.query, description: s.description, settings: s.settings },
        ]),
      ),
      runs: runs.map((r) => ({
        ...r,
        load: {
          ...r.load,
          insertSeconds: round(r.load.insertSeconds, 2),
          indexSeconds: round(r.load.indexSeconds, 2),
          analyzeSeconds: round(r.load.analyzeSeconds, 2),
          indexes: r.load.indexes.map((i) => ({ ...i, seconds: round(i.seconds, 2) })),
        },
        strategies: Object.fromEntries(
          Object.entries(r.strategies).map(([k, v]) => [
            k,
            { typical: clean(v.typical), heavy: v.heavy ? clean(v.heavy) : null },
          ]),
        ),
      })),
      estimate1M,
      seconds: round(seconds, 1),
    },
    values.json,
  );
}

main().catch((err) => {
  process.stderr.write(
    `bench/recall-scale: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
