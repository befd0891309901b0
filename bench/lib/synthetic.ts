/**
 * Synthetic memories at scale: users, one persona instance each, and memories in both layers
 * with random 512-dim vectors, bulk-loaded with multi-row INSERT … SELECT FROM unnest(…)
 * (the pg driver here has no COPY support without another package). Vector indexes are
 * dropped before the load and rebuilt afterwards from their own definitions (read from
 * pg_indexes, so they stay exactly what the migration created).
 *
 * Vectors are not uniform noise (on which every ANN index looks worse than on real
 * embeddings): each is a random "topic" centre (one of `topics`) plus Gaussian noise of the
 * same norm, so two memories of one topic have cosine ≈ 0.5 and of different topics ≈ 0,
 * roughly what sentence embeddings of related / unrelated facts score.
 */
import { randomUUID } from 'node:crypto';
import { mulberry32 } from './common.js';
import type { BenchDatabase } from './db.js';

export const BENCH_MODEL = 'bench-random-512';
const DIMS = 512;

export class VectorSource {
  private readonly random: () => number;
  private readonly centres: Float64Array[];
  private spare: number | null = null;
  constructor(
    seed: number,
    topics: number,
    private readonly uniform = false,
  ) {
    this.random = mulberry32(seed);
    this.centres = Array.from({ length: topics }, () => this.unit(this.gaussianVector()));
  }

  private gaussian(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    let u = 0;
    while (u === 0) u = this.random();
    const v = this.random();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  private gaussianVector(): Float64Array {
    const v = new Float64Array(DIMS);
    for (let i = 0; i < DIMS; i++) v[i] = this.gaussian();
    return v;
  }

  private unit(v: Float64Array): Float64Array {
    let s = 0;
    for (const x of v) s += x * x;
    const n = Math.sqrt(s);
    for (let i = 0; i < v.length; i++) v[i] = (v[i] as number) / n;
    return v;
  }

  /** A unit vector: topic centre + noise of equal norm (or pure noise with `uniform`). */
  next(): number[] {
    const noise = this.unit(this.gaussianVector());
    if (this.uniform) return Array.from(noise);
    const centre = this.centres[Math.floor(this.random() * this.centres.length)] as Float64Array;
    const v = new Float64Array(DIMS);
    for (let i = 0; i < DIMS; i++) v[i] = (centre[i] as number) + (noise[i] as number);
    return Array.from(this.unit(v));
  }
}

/**
 * Memory and query texts for the lexical side: words drawn from a Zipf-distributed vocabulary
 * of 50 000 words (rank r has probability ∝ 1/r, as words in English text) without its 100 most
 * frequent ranks — the stop words the `english` configuration drops —, so a query mixes common
 * words that match hundreds of a heavy user's memories with rare ones that match few: what BM25
 * has to rank. Words are pronounceable pseudo-words ("kalomi"), stemmed like any English word.
 */
export class TextSource {
  private readonly random: () => number;
  private readonly words: string[];
  private readonly cumulative: Float64Array;
  constructor(seed: number, vocabulary = 50_000, skipped = 100) {
    this.random = mulberry32(seed ^ 0x5eed);
    const syllables = 'ka lo mi re su ta ne po vi da ru ge fo bi ze hu'.split(' ');
    const seen = new Set<string>();
    this.words = [];
    while (this.words.length < vocabulary) {
      const n = 2 + Math.floor(this.random() * 4);
      let w = '';
      for (let i = 0; i < n; i++) w += syllables[Math.floor(this.random() * syllables.length)];
      if (!seen.has(w)) {
        seen.add(w);
        this.words.push(w);
      }
    }
    this.cumulative = new Float64Array(vocabulary);
    let total = 0;
    for (let r = 0; r < vocabulary; r++) {
      total += 1 / (r + 1 + skipped);
      this.cumulative[r] = total;
    }
    for (let r = 0; r < vocabulary; r++)
      this.cumulative[r] = (this.cumulative[r] as number) / total;
  }

  private word(): string {
    const x = this.random();
    let lo = 0;
    let hi = this.cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.cumulative[mid] as number) < x) lo = mid + 1;
      else hi = mid;
    }
    return this.words[lo] as string;
  }

  /** `min`..`max` words. */
  sentence(min: number, max: number): string {
    const n = min + Math.floor(this.random() * (max - min + 1));
    return Array.from({ length: n }, () => this.word()).join(' ');
  }
}

/** 4-decimal text of each component via a lookup table: formatting floats dominates otherwise. */
const LUT_SCALE = 10_000;
const LUT_MAX = 10_000;
const LUT = Array.from({ length: 2 * LUT_MAX + 1 }, (_, i) => String((i - LUT_MAX) / LUT_SCALE));
export function vectorText(v: readonly number[]): string {
  const parts = new Array<string>(v.length);
  for (let i = 0; i < v.length; i++) {
    const q = Math.max(-LUT_MAX, Math.min(LUT_MAX, Math.round((v[i] as number) * LUT_SCALE)));
    parts[i] = LUT[q + LUT_MAX] as string;
  }
  return `[${parts.join(',')}]`;
}

export interface BenchUser {
  userId: string;
  instanceId: string;
  profile: number;
  relationship: number;
}

export interface LoadSpec {
  /** Background users and memories per user (profile + relationship). */
  users: number;
  perUser: number;
  /** Fraction of each user's memories in the profile layer. */
  profileShare: number;
  /** 0: no heavy user. */
  heavy: number;
  heavyProfileShare: number;
  topics: number;
  uniform: boolean;
  seed: number;
  batch: number;
  /**
   * Storage of the embedding column. pgvector's type default is EXTERNAL: a 512-dim vector
   * (2 KB) pushes the row over the TOAST threshold, so it lives out of line. PLAIN keeps it in
   * the heap row (fits: ~2.3 KB per row, 3 rows per 8 KB page).
   */
  storage: 'external' | 'plain';
}

export interface Loaded {
  users: BenchUser[];
  heavy: BenchUser | null;
  total: number;
  personaId: string;
  vectors: VectorSource;
  texts: TextSource;
  timings: { insertSeconds: number; indexSeconds: number; analyzeSeconds: number };
  indexes: { name: string; seconds: number }[];
}

/** Index definitions of `memories` that use HNSW (rebuilt after the load). */
async function vectorIndexes(bench: BenchDatabase) {
  return bench.query<{ indexname: string; indexdef: string }>(
    "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'memories' AND indexdef ILIKE '%USING hnsw%' ORDER BY indexname",
  );
}

export async function loadSynthetic(
  bench: BenchDatabase,
  spec: LoadSpec,
  progress: (message: string) => void,
): Promise<Loaded> {
  const vectors = new VectorSource(spec.seed, spec.topics, spec.uniform);
  const texts = new TextSource(spec.seed);
  const personaId = randomUUID();
  await bench.query(
    `INSERT INTO personas (id, slug, name, description, system_prompt, greeting, updated_at)
     VALUES ($1::uuid, $2, 'Bench', 'benchmark persona', 'You are a benchmark.', 'Hi', now())`,
    [personaId, `bench-${personaId.slice(0, 8)}`],
  );
  const make = (n: number, share: number): BenchUser => {
    const profile = Math.round(n * share);
    return { userId: randomUUID(), instanceId: randomUUID(), profile, relationship: n - profile };
  };
  const users = Array.from({ length: spec.users }, () => make(spec.perUser, spec.profileShare));
  const heavy = spec.heavy > 0 ? make(spec.heavy, spec.heavyProfileShare) : null;
  const all = heavy ? [...users, heavy] : users;

  for (let i = 0; i < all.length; i += 5000) {
    const chunk = all.slice(i, i + 5000);
    await bench.query('INSERT INTO users (id) SELECT unnest($1::uuid[])', [
      chunk.map((u) => u.userId),
    ]);
    await bench.query(
      'INSERT INTO persona_instances (id, user_id, persona_id) SELECT i, u, $3::uuid FROM unnest($1::uuid[], $2::uuid[]) AS t(i, u)',
      [chunk.map((u) => u.instanceId), chunk.map((u) => u.userId), personaId],
    );
  }

  if (spec.storage === 'plain') {
    await bench.query('ALTER TABLE memories ALTER COLUMN embedding SET STORAGE PLAIN');
  }
  const indexes = await vectorIndexes(bench);
  for (const ix of indexes) await bench.query(`DROP INDEX IF EXISTS "${ix.indexname}"`);

  const total = all.reduce((a, u) => a + u.profile + u.relationship, 0);
  const started = performance.now();
  let done = 0;
  let rows: { u: string; i: string | null; c: string; e: string }[] = [];
  const flush = async () => {
    if (rows.length === 0) return;
    await bench.query(
      `INSERT INTO memories (id, user_id, instance_id, content, content_hash, category, embedding,
         embedding_model, created_at, updated_at)
       SELECT gen_random_uuid(), u, i, c, md5(c), 'FACT', e::vector, $5, now(), now()
       FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[]) AS t(u, i, c, e)`,
      [
        rows.map((r) => r.u),
        rows.map((r) => r.i),
        rows.map((r) => r.c),
        rows.map((r) => r.e),
        BENCH_MODEL,
      ],
    );
    done += rows.length;
    rows = [];
  };
  let lastReport = performance.now();
  for (const u of all) {
    for (let n = 0; n < u.profile + u.relationship; n++) {
      const profile = n < u.profile;
      rows.push({
        u: u.userId,
        i: profile ? null : u.instanceId,
        // Ten-odd words; the number keeps each text unique in its layer (duplicate guard).
        c: `${texts.sentence(8, 14)} ${n}`,
        e: vectorText(vectors.next()),
      });
      if (rows.length >= spec.batch) {
        await flush();
        if (performance.now() - lastReport > 10_000) {
          lastReport = performance.now();
          const rate = done / ((lastReport - started) / 1000);
          progress(`  loaded ${done}/${total} memories (${Math.round(rate)}/s)`);
        }
      }
    }
  }
  await flush();
  const insertSeconds = (performance.now() - started) / 1000;

  const indexTimes: { name: string; seconds: number }[] = [];
  const t1 = performance.now();
  for (const ix of indexes) {
    const t = performance.now();
    await bench.db.withSession(async (s) => {
      if (bench.kind === 'postgres') {
        // An HNSW build is fast while its graph fits here (~2.3 kB per 512-dimension row:
        // 1.6 GB for the 700 000-row relationship index of the 1M run), much slower after.
        await s.exec("SET maintenance_work_mem = '3GB'");
        await s.exec('SET max_parallel_maintenance_workers = 1');
      }
      await s.exec(ix.indexdef);
      if (bench.kind === 'postgres') {
        await s.exec('RESET maintenance_work_mem');
        await s.exec('RESET max_parallel_maintenance_workers');
      }
    });
    indexTimes.push({ name: ix.indexname, seconds: (performance.now() - t) / 1000 });
  }
  const indexSeconds = (performance.now() - t1) / 1000;
  const t2 = performance.now();
  // VACUUM as autovacuum would after a bulk load (visibility map, index clean-up), then statistics.
  await bench.query('VACUUM (ANALYZE) memories');
  // The word postings (migration 20261206010000): their index-only scans need the visibility map.
  await bench.query('VACUUM (ANALYZE) memory_terms');
  await bench.query('ANALYZE users');
  await bench.query('ANALYZE persona_instances');
  const analyzeSeconds = (performance.now() - t2) / 1000;
  return {
    users,
    heavy,
    total,
    personaId,
    vectors,
    texts,
    timings: { insertSeconds, indexSeconds, analyzeSeconds },
    indexes: indexTimes,
  };
}
