/**
 * Retrieval quality on LoCoMo (DESIGN.md "Benchmarks"): every turn of a conversation is
 * stored as one PROFILE memory of one fresh user through the project's own code (LocalEmbedder
 * in document mode + `insertMemory`, created at its session's date: when it was told), every
 * question of categories 1–4 with evidence is searched with the project's rankers, and recall@k
 * of the evidence turns is reported per category and overall.
 *
 *   npx tsx bench/locomo.ts --data ../shared/data/locomo-dev.json [--mode all]
 *     [--database-url postgres://…] [--conversations N] [--k 5,10,20] [--fusion-grid] [--json out.json]
 *
 * Project rankers (`--mode all`, the default, runs every one): `project` (searchLayer, vector),
 * `project-lexical` (searchLayerLexical, BM25 in SQL), `project-hybrid` (searchLayerHybrid with
 * the default fusion) and `turn-recall` — recallForTurn itself, the function and settings a
 * chat turn uses (env defaults; k = the largest k measured), with the question as the message.
 * Baselines in the same run: a random ranking (analytic expectation, recall@k = k/N), an exact
 * brute-force cosine ranking in JS over the very same vectors (does the SQL path lose
 * anything?), and a textbook BM25 in JS over the turns (`bm25`) and over the turns plus their
 * session date in words (`bm25-dated`): lexical references, not the project's code.
 * `--fusion-grid` also ranks every question with a grid of fusion settings and reports R@10 per
 * setting over the whole file: how the defaults were chosen (never per question).
 */
import { createHash, randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { fusionFromEnv } from '../src/composition.js';
import { rawQueryViaPrisma } from '../src/db/raw.js';
import { envSchema } from '../src/env.js';
import { silentLogger } from '../src/logger.js';
import { DEFAULT_FUSION, type FusionSettings } from '../src/memory/fusion.js';
import { recallForTurn } from '../src/memory/recall.js';
import {
  contentHash,
  insertMemory,
  readLayerSizes,
  type ScoredMemory,
  searchLayer,
  searchLayerHybrid,
  searchLayerLexical,
} from '../src/memory/store.js';
import { Metrics } from '../src/metrics.js';
import { LocalEmbedder } from '../src/providers/embeddings/local.js';
import type { Embedder } from '../src/providers/embeddings/types.js';
import { MONTH_NAMES, WEEKDAY_NAMES } from '../src/time/zone.js';
import { deadline, emitJson, log, machineInfo, round, summarize, table } from './lib/common.js';
import { databaseUrlFrom, explain, openBenchDatabase } from './lib/db.js';

// ---------------------------------------------------------------------------------------------
// Input: LoCoMo's format, validated.
// ---------------------------------------------------------------------------------------------

const TurnSchema = z.looseObject({
  speaker: z.string().min(1),
  dia_id: z.string().min(1),
  text: z.string(),
  blip_caption: z.string().nullish(),
});
type LocomoTurn = z.infer<typeof TurnSchema>;

const QaSchema = z.looseObject({
  question: z.string().min(1),
  answer: z.unknown().optional(),
  evidence: z.array(z.string()).optional(),
  category: z.number().int(),
});

const SESSION_KEY = /^session_(\d+)$/;

const SampleSchema = z.looseObject({
  sample_id: z.string().optional(),
  conversation: z
    .looseObject({ speaker_a: z.string(), speaker_b: z.string() })
    .superRefine((conv, ctx) => {
      const sessions = Object.keys(conv).filter((k) => SESSION_KEY.test(k));
      if (sessions.length === 0) {
        ctx.addIssue({ code: 'custom', message: 'has no session_<n> keys' });
      }
      for (const key of sessions) {
        const parsed = z.array(TurnSchema).safeParse(conv[key]);
        if (!parsed.success) {
          for (const issue of parsed.error.issues) {
            ctx.addIssue({ code: 'custom', path: [key, ...issue.path], message: issue.message });
          }
        }
      }
    }),
  qa: z.array(QaSchema),
});
const FileSchema = z.array(SampleSchema).min(1, 'expected at least one conversation');

export const CATEGORY_NAMES: Record<number, string> = {
  1: 'multi-hop',
  2: 'temporal',
  3: 'open-domain',
  4: 'single-hop',
};

async function loadLocomo(file: string) {
  let raw: string;
  try {
    raw = await readFile(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read --data ${file}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (err) {
    throw new Error(`--data ${file} is not JSON: ${(err as Error).message}`);
  }
  const parsed = FileSchema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, 10).map((i) => {
      const path = i.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`));
      return `  $${path.join('')}: ${i.message}`;
    });
    const more =
      parsed.error.issues.length > 10 ? `\n  … ${parsed.error.issues.length - 10} more` : '';
    throw new Error(
      `--data ${file} is not in LoCoMo's format (a JSON array of {conversation: {speaker_a, speaker_b, session_<n>: [{speaker, dia_id, text, blip_caption?}]}, qa: [{question, evidence: [dia_id], category}]}):\n${issues.join('\n')}${more}`,
    );
  }
  return parsed.data;
}

/** LoCoMo's session time, "1:56 pm on 8 May, 2023", as a UTC instant; null if unreadable. */
export function parseSessionDate(raw: unknown): Date | null {
  if (typeof raw !== 'string') return null;
  const m = /^(\d{1,2}):(\d{2})\s*(am|pm)\s+on\s+(\d{1,2})\s+([A-Za-z]+),?\s+(\d{4})$/i.exec(
    raw.trim(),
  );
  if (!m) return null;
  const month = MONTH_NAMES.findIndex(
    (name) => name.toLowerCase() === (m[5] as string).toLowerCase(),
  );
  if (month < 0) return null;
  const hour = (Number(m[1]) % 12) + ((m[3] as string).toLowerCase() === 'pm' ? 12 : 0);
  return new Date(Date.UTC(Number(m[6]), month, Number(m[4]), hour, Number(m[2])));
}

type DatedTurn = LocomoTurn & { date: Date | null };

/** Every turn in session order, each with its session's date (null when the file has none). */
function turnsOf(conversation: Record<string, unknown>): DatedTurn[] {
  return Object.keys(conversation)
    .flatMap((k) => {
      const m = SESSION_KEY.exec(k);
      return m ? [{ n: Number(m[1]), turns: conversation[k] as LocomoTurn[] }] : [];
    })
    .sort((a, b) => a.n - b.n)
    .flatMap((s) => {
      const date = parseSessionDate(conversation[`session_${s.n}_date_time`]);
      return s.turns.map((t) => ({ ...t, date }));
    });
}

const SEASONS = ['winter', 'spring', 'summer', 'autumn'];

/**
 * The date words the project's lexical document adds (migration 20261203010000,
 * memory_date_words: month, year, weekday, season, in UTC), for the JS BM25 reference with dates.
 */
function dateWords(date: Date | null): string {
  if (!date) return '';
  const season = SEASONS[Math.floor(((date.getUTCMonth() + 1) % 12) / 3)];
  return `${MONTH_NAMES[date.getUTCMonth()]} ${date.getUTCFullYear()} ${WEEKDAY_NAMES[date.getUTCDay()]} ${season}`;
}

/** The memory text: speaker name, the turn, and the image caption when the turn shares one. */
export function memoryText(turn: LocomoTurn): string {
  const caption = turn.blip_caption?.trim();
  return `${turn.speaker}: ${turn.text.trim()}${caption ? ` [shares a photo: ${caption}]` : ''}`;
}

/**
 * LoCoMo's evidence lists contain a few malformed ids ("D8:6; D9:17", "D:11:26"): split on
 * separators and normalise "D:<s>:<t>". Ids still unknown to the conversation are dropped and
 * reported; nothing is guessed beyond that.
 */
function normaliseEvidence(raw: readonly string[]): string[] {
  return raw
    .flatMap((e) => e.split(/[;,\s]+/))
    .filter(Boolean)
    .map((e) => {
      const m = /^D:?(\d+):(\d+)$/.exec(e);
      return m ? `D${m[1]}:${m[2]}` : e;
    });
}

// ---------------------------------------------------------------------------------------------
// Rankers other than the project's: exact cosine, BM25, random (analytic).
// ---------------------------------------------------------------------------------------------

function dot(a: readonly number[], b: readonly number[]): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] as number) * (b[i] as number);
  return s;
}

function tokens(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
}

/** Okapi BM25 with the textbook parameters (k1 = 1.2, b = 0.75); no stemming, no stopwords. */
class Bm25 {
  private readonly docs: Map<string, number>[];
  private readonly lengths: number[];
  private readonly avg: number;
  private readonly df = new Map<string, number>();
  constructor(texts: readonly string[]) {
    this.docs = texts.map((t) => {
      const tf = new Map<string, number>();
      for (const tok of tokens(t)) tf.set(tok, (tf.get(tok) ?? 0) + 1);
      return tf;
    });
    this.lengths = texts.map((t) => tokens(t).length);
    this.avg = this.lengths.reduce((a, b) => a + b, 0) / Math.max(1, texts.length);
    for (const d of this.docs)
      for (const tok of d.keys()) this.df.set(tok, (this.df.get(tok) ?? 0) + 1);
  }
  rank(query: string): number[] {
    const n = this.docs.length;
    const q = [...new Set(tokens(query))];
    const scores = this.docs.map((d, i) => {
      let s = 0;
      for (const tok of q) {
        const tf = d.get(tok);
        if (!tf) continue;
        const df = this.df.get(tok) ?? 0;
        const idf = Math.log(1 + (n - df + 0.5) / (df + 0.5));
        s +=
          (idf * tf * 2.2) / (tf + 1.2 * (1 - 0.75 + (0.75 * (this.lengths[i] ?? 0)) / this.avg));
      }
      return s;
    });
    return scores
      .map((s, i) => ({ s, i }))
      .sort((a, b) => b.s - a.s || a.i - b.i)
      .map((x) => x.i);
  }
}

/** Expected hit rate of a uniformly random top-k: 1 − C(N−E, k) / C(N, k). */
function randomHit(n: number, e: number, k: number): number {
  if (k >= n) return 1;
  let miss = 1;
  for (let i = 0; i < k; i++) miss *= (n - e - i) / (n - i);
  return 1 - Math.max(0, miss);
}

/**
 * The project's embedder, fed in order of text length (and answered in input order): the
 * local model pads every batch to its longest text, so similar lengths together run ~1.5x
 * faster here. The vectors are the same up to float rounding (~1e-7).
 */
/**
 * --embedding-cache: vectors of earlier runs, by model, input type and text (the local model
 * is deterministic), so a second run (the other database) skips ~minutes of embedding.
 */
const embeddingCache = new Map<string, number[]>();
const cacheKey = (model: string, type: string, text: string) =>
  createHash('sha256').update(`${model}\u0000${type}\u0000${text}`).digest('hex');

async function embedByLength(
  embedder: LocalEmbedder,
  all: readonly string[],
  type: 'query' | 'document',
): Promise<number[][]> {
  const cached = all.map((t) => embeddingCache.get(cacheKey(embedder.model, type, t)));
  const missing = all.filter((_, i) => cached[i] === undefined);
  const fresh = missing.length > 0 ? await embedUncached(embedder, missing, type) : [];
  for (const [i, t] of missing.entries()) {
    embeddingCache.set(cacheKey(embedder.model, type, t), fresh[i] as number[]);
  }
  return all.map((t) => embeddingCache.get(cacheKey(embedder.model, type, t)) as number[]);
}

async function embedUncached(
  embedder: LocalEmbedder,
  texts: readonly string[],
  type: 'query' | 'document',
): Promise<number[][]> {
  const order = texts
    .map((_, i) => i)
    .sort((a, b) => (texts[a]?.length ?? 0) - (texts[b]?.length ?? 0));
  const vectors = await embedder.embed(
    order.map((i) => texts[i] as string),
    type,
  );
  const out = new Array<number[]>(texts.length);
  order.forEach((i, j) => {
    out[i] = vectors[j] as number[];
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Scoring
// ---------------------------------------------------------------------------------------------

interface QuestionResult {
  sample: string;
  category: number;
  evidence: number;
  /** ranker → per-k recall and hit */
  recall: Record<string, number[]>;
  hit: Record<string, number[]>;
}

function scoreRanking(
  retrievedDia: readonly (readonly string[])[],
  evidence: Set<string>,
  ks: number[],
) {
  const recall: number[] = [];
  const hit: number[] = [];
  for (const k of ks) {
    const found = new Set<string>();
    for (const dias of retrievedDia.slice(0, k))
      for (const d of dias) if (evidence.has(d)) found.add(d);
    recall.push(found.size / evidence.size);
    hit.push(found.size > 0 ? 1 : 0);
  }
  return { recall, hit };
}

function aggregate(results: readonly QuestionResult[], ranker: string, ks: number[]) {
  const n = results.length;
  const mean = (pick: (r: QuestionResult) => number) =>
    n === 0 ? Number.NaN : results.reduce((a, r) => a + pick(r), 0) / n;
  return {
    n,
    recall: ks.map((_, i) => mean((r) => r.recall[ranker]?.[i] ?? 0)),
    hit: ks.map((_, i) => mean((r) => r.hit[ranker]?.[i] ?? 0)),
  };
}

/** The project's rankers, each the project's own code. */
const PROJECT_RANKERS = ['project', 'project-lexical', 'project-hybrid', 'turn-recall'] as const;
type ProjectRanker = (typeof PROJECT_RANKERS)[number];

function k10Index(ks: readonly number[]): number {
  return ks.indexOf(10) >= 0 ? ks.indexOf(10) : ks.length - 1;
}

/**
 * The fusion settings compared by --fusion-grid, each over the whole file (the defaults in
 * src/memory/fusion.ts were chosen from this table, never per question).
 */
function fusionGrid(): FusionSettings[] {
  const out: FusionSettings[] = [];
  for (const rrfK of [5, 10, 30, 60])
    for (const lexicalWeight of [0.5, 1, 1.5, 2, 3, 5])
      for (const depth of [20, 50, 100])
        out.push({
          ...DEFAULT_FUSION,
          vectorWeight: 1,
          lexicalWeight,
          vectorDepth: depth,
          lexicalDepth: depth,
          rrfK,
        });
  return out;
}

/** searchLayerHybrid's fusion, in JS, over the two sides' rankings (for --fusion-grid). */
function fuseInJs(
  meaning: readonly string[],
  words: readonly { id: string; score: number }[],
  g: FusionSettings,
): string[] {
  const rows = new Map<string, { score: number; position: number; meaningRank: number }>();
  const meaningRank = new Map(meaning.map((id, i) => [id, i + 1]));
  for (const [i, id] of meaning.entries()) {
    rows.set(id, {
      score: g.vectorWeight / (g.rrfK + i + 1),
      position: Number.POSITIVE_INFINITY,
      meaningRank: i + 1,
    });
  }
  let rank = 0;
  for (const [i, w] of words.entries()) {
    if (i === 0 || w.score !== words[i - 1]?.score) rank = i + 1;
    const row = rows.get(w.id) ?? {
      score: 0,
      position: Number.POSITIVE_INFINITY,
      meaningRank: meaningRank.get(w.id) ?? Number.POSITIVE_INFINITY,
    };
    row.score += g.lexicalWeight / (g.rrfK + rank);
    row.position = i + 1;
    rows.set(w.id, row);
  }
  return [...rows.entries()]
    .sort(
      ([ia, a], [ib, b]) =>
        b.score - a.score ||
        a.position - b.position ||
        a.meaningRank - b.meaningRank ||
        (ia < ib ? -1 : 1),
    )
    .map(([id]) => id);
}

/**
 * The embedder recallForTurn is given: the question vectors already embedded in batch (the
 * same model, the same vectors), anything else embedded for real.
 */
function cachedEmbedder(real: Embedder, pairs: [string, number[]][]): Embedder {
  const known = new Map(pairs);
  return {
    provider: real.provider,
    model: real.model,
    async embed(texts, type) {
      if (texts.every((t) => known.has(t))) return texts.map((t) => known.get(t) as number[]);
      return real.embed(texts, type);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

async function main() {
  const { values } = parseArgs({
    options: {
      data: { type: 'string' },
      mode: { type: 'string', default: 'all' },
      'fusion-grid': { type: 'boolean', default: false },
      'embedding-cache': { type: 'string' },
      'database-url': { type: 'string' },
      conversations: { type: 'string' },
      k: { type: 'string', default: '5,10,20' },
      json: { type: 'string' },
      'no-analyze': { type: 'boolean', default: false },
      'max-seconds': { type: 'string', default: '600' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help || !values.data) {
    process.stdout.write(
      'usage: tsx bench/locomo.ts --data <locomo.json> [--mode all|vector|lexical|hybrid|turn-recall|both[,…]]\n' +
        '       [--database-url URL] [--conversations N] [--k 5,10,20] [--fusion-grid] [--json out.json]\n' +
        '       [--embedding-cache file.json]\n' +
        '       [--no-analyze] [--max-seconds 600]\n',
    );
    process.exit(values.help ? 0 : 2);
  }
  const mode = values.mode;
  const MODES: Record<string, ProjectRanker[]> = {
    all: ['project', 'project-lexical', 'project-hybrid', 'turn-recall'],
    both: ['project', 'project-hybrid'],
    vector: ['project'],
    lexical: ['project-lexical'],
    hybrid: ['project-hybrid'],
    'turn-recall': ['turn-recall'],
  };
  const selected = new Set(
    mode.split(',').flatMap((m) => {
      const r = MODES[m.trim()];
      if (!r) throw new Error(`--mode must list of ${Object.keys(MODES).join(', ')}; got ${m}`);
      return r;
    }),
  );
  const useVector = selected.has('project');
  const maxSeconds = Number(values['max-seconds']);
  deadline(maxSeconds, 'bench/locomo');
  const ks = values.k
    .split(',')
    .map((x) => Number(x.trim()))
    .filter((x) => Number.isInteger(x) && x > 0)
    .sort((a, b) => a - b);
  if (ks.length === 0) throw new Error('--k must list positive integers, e.g. 5,10,20');
  const maxK = ks[ks.length - 1] as number;
  const minScore = envSchema.parse({}).RECALL_MIN_SCORE;

  const started = performance.now();
  let samples = await loadLocomo(values.data);
  if (values.conversations) samples = samples.slice(0, Number(values.conversations));

  const url = databaseUrlFrom(values['database-url']);
  const bench = await openBenchDatabase({ url, poolSize: 4 });
  const prisma = bench.db.prisma;
  log(`database: ${bench.kind} (${bench.server.version}, pgvector ${bench.server.pgvector})`);
  const cacheFile = values['embedding-cache'];
  if (cacheFile) {
    try {
      const saved = JSON.parse(await readFile(cacheFile, 'utf8')) as Record<string, number[]>;
      for (const [k, v] of Object.entries(saved)) embeddingCache.set(k, v);
      log(`embedding cache: ${embeddingCache.size} vectors from ${cacheFile}`);
    } catch {
      log(`embedding cache: ${cacheFile} not readable yet; it is written after embedding`);
    }
  }
  const embedder = new LocalEmbedder({ logger: silentLogger });
  const metrics = new Metrics({ defaultMetrics: false });
  await embedder.warmUp();

  const userIds: string[] = [];
  const timings = { embedDocsMs: 0, insertMs: 0, embedQueriesMs: 0, searchMs: [] as number[] };
  const data_notes = {
    skippedCategory5: 0,
    skippedNoEvidence: 0,
    unknownEvidenceIds: [] as string[],
    duplicateTurnTexts: 0,
    turnsOver500Chars: 0,
  };

  interface Loaded {
    sample: string;
    userId: string;
    turns: DatedTurn[];
    texts: string[];
    vectors: number[][];
    /** memory id → dia ids stored as that memory */
    diaOf: Map<string, string[]>;
    questions: { q: string; category: number; evidence: Set<string> }[];
  }
  const loaded: Loaded[] = [];

  // 1. Store every turn, all conversations first (one table of many users, as in production).
  for (const [index, sample] of samples.entries()) {
    const name = sample.sample_id ?? `conversation-${index}`;
    const turns = turnsOf(sample.conversation);
    const texts = turns.map(memoryText);
    data_notes.turnsOver500Chars += texts.filter((t) => t.length > 500).length;
    const userId = randomUUID();
    userIds.push(userId);
    await prisma.$executeRaw`INSERT INTO users (id) VALUES (${userId}::uuid)`;

    let t0 = performance.now();
    const vectors = await embedByLength(embedder, texts, 'document');
    timings.embedDocsMs += performance.now() - t0;

    t0 = performance.now();
    const diaOf = new Map<string, string[]>();
    for (const [i, turn] of turns.entries()) {
      const content = texts[i] as string;
      let id = await insertMemory(prisma, {
        scope: { userId, instanceId: null },
        content,
        category: 'OTHER',
        confidence: null,
        embedding: vectors[i] as number[],
        embeddingModel: embedder.model,
        sourceMessageId: null,
        sourceSessionId: null,
        // The session's date: when the user told it (the lexical document holds it in words).
        createdAt: turn.date ?? undefined,
      });
      if (id === null) {
        // Same normalised text as an earlier turn: the store keeps one row for both.
        data_notes.duplicateTurnTexts += 1;
        const existing = await prisma.memory.findFirst({
          where: {
            userId,
            instanceId: null,
            contentHash: contentHash(content),
            supersededById: null,
          },
          select: { id: true },
        });
        id = existing?.id ?? null;
      }
      if (id) diaOf.set(id, [...(diaOf.get(id) ?? []), turn.dia_id]);
    }
    timings.insertMs += performance.now() - t0;

    const known = new Set(turns.map((t) => t.dia_id));
    const questions: Loaded['questions'] = [];
    for (const qa of sample.qa) {
      if (!(qa.category in CATEGORY_NAMES)) {
        data_notes.skippedCategory5 += 1;
        continue;
      }
      const ev = normaliseEvidence(qa.evidence ?? []);
      for (const e of ev) if (!known.has(e)) data_notes.unknownEvidenceIds.push(`${name}:${e}`);
      const evidence = new Set(ev.filter((e) => known.has(e)));
      if (evidence.size === 0) {
        data_notes.skippedNoEvidence += 1;
        continue;
      }
      questions.push({ q: qa.question, category: qa.category, evidence });
    }
    loaded.push({ sample: name, userId, turns, texts, vectors, diaOf, questions });
    log(`${name}: ${turns.length} turns stored, ${questions.length} questions`);
  }
  if (!values['no-analyze']) await bench.query('ANALYZE memories');
  const saveCache = async () => {
    if (cacheFile) await writeFile(cacheFile, JSON.stringify(Object.fromEntries(embeddingCache)));
  };
  await saveCache();

  // 2. Search every question with the project's rankers, and with the baselines.
  const env = envSchema.parse({});
  const fusion = fusionFromEnv(env);
  const results: QuestionResult[] = [];
  let shortResults = 0;
  let setMismatch = 0;
  const plans: Partial<Record<ProjectRanker, string>> = {};
  const latencyMs: Record<string, number[]> = {};
  const timed = async <T>(name: string, f: () => Promise<T>): Promise<T> => {
    const s0 = performance.now();
    const out = await f();
    latencyMs[name] = [...(latencyMs[name] ?? []), performance.now() - s0];
    return out;
  };
  const grid = values['fusion-grid'] ? fusionGrid() : [];
  const gridRecall = grid.map(() => [] as number[]);
  let lexicalMatched = 0;
  for (const conv of loaded) {
    const t0 = performance.now();
    const qVectors = await embedByLength(
      embedder,
      conv.questions.map((q) => q.q),
      'query',
    );
    timings.embedQueriesMs += performance.now() - t0;
    // recallForTurn embeds its own text: it is given these very vectors (embedded in batch).
    const cached = cachedEmbedder(
      embedder,
      conv.questions.map((q, i) => [q.q, qVectors[i] as number[]]),
    );
    const bm25 = new Bm25(conv.texts);
    const bm25Dated = new Bm25(
      conv.texts.map((t, i) => `${t} ${dateWords(conv.turns[i]?.date ?? null)}`),
    );
    const n = conv.turns.length;
    const scope = { userId: conv.userId, instanceId: null };
    const diaOfHits = (hits: ScoredMemory[]) => hits.map((h) => conv.diaOf.get(h.memory.id) ?? []);
    const capture = (name: ProjectRanker) =>
      plans[name] === undefined
        ? bench.tap.captureNext((sql) => sql.includes('FROM') && sql.includes('memories'))
        : undefined;
    for (const [qi, q] of conv.questions.entries()) {
      const embedding = qVectors[qi] as number[];
      const rankings: [string, (readonly string[])[]][] = [];
      if (useVector) {
        const c = capture('project');
        const hits = await timed('project', () =>
          searchLayer(prisma, scope, { embedding, model: embedder.model, k: maxK }),
        );
        if (c) plans.project = await explain(bench, await c);
        if (hits.length < Math.min(maxK, conv.diaOf.size)) shortResults += 1;
        const projectDia = diaOfHits(hits);
        rankings.push(['project', projectDia]);
        rankings.push([
          `project_minScore${minScore}`,
          diaOfHits(hits.filter((h) => h.score >= minScore)),
        ]);
        const exactSet = new Set(
          conv.vectors
            .map((v, i) => ({ s: dot(v, embedding), i }))
            .sort((a, b) => b.s - a.s || a.i - b.i)
            .slice(0, hits.length)
            .map((x) => conv.turns[x.i]?.dia_id as string),
        );
        const projectSet = new Set(projectDia.flat());
        if ([...exactSet].some((d) => !projectSet.has(d))) setMismatch += 1;
      }
      if (selected.has('project-lexical')) {
        const c = capture('project-lexical');
        const hits = await timed('project-lexical', () =>
          searchLayerLexical(prisma, scope, { text: q.q, model: embedder.model, k: maxK }),
        );
        if (c) plans['project-lexical'] = await explain(bench, await c);
        if (hits.length > 0) lexicalMatched += 1;
        rankings.push(['project-lexical', diaOfHits(hits)]);
      }
      if (selected.has('project-hybrid')) {
        const c = capture('project-hybrid');
        const hits = await timed('project-hybrid', () =>
          searchLayerHybrid(prisma, scope, {
            embedding,
            model: embedder.model,
            k: maxK,
            text: q.q,
          }),
        );
        if (c) plans['project-hybrid'] = await explain(bench, await c);
        rankings.push(['project-hybrid', diaOfHits(hits)]);
      }
      if (selected.has('turn-recall')) {
        // Exactly what a chat turn runs (recallForTurn with the default settings), with the
        // question as the message and no earlier reply; k = the deepest k measured here, in
        // the profile layer where the turns are stored.
        // The layer sizes, as the turn's opening statement reads them before its recall.
        const instanceId = randomUUID();
        const liveRows = await readLayerSizes(rawQueryViaPrisma(prisma), {
          userId: conv.userId,
          instanceId,
        });
        const recalled = await timed('turn-recall', () =>
          recallForTurn(
            { db: prisma, embedder: cached, logger: silentLogger, metrics },
            { userId: conv.userId, instanceId, liveRows },
            { message: q.q },
            { profileK: maxK, relationshipK: 0, minScore, fusion },
          ),
        );
        if (recalled.error) throw new Error(`turn recall failed: ${recalled.error}`);
        rankings.push(['turn-recall', diaOfHits(recalled.profile)]);
      }
      if (grid.length > 0) {
        // Each side's ranking once, from the project's SQL (the meaning side under the turn's
        // minScore, as searchLayerHybrid filters it); the weighted RRF of every setting is then
        // computed here exactly as searchLayerHybrid's SQL does (BM25 ties share a rank; equal
        // fused scores go to word matches, then to the nearer by meaning).
        const depth = Math.max(...grid.map((g) => Math.max(g.vectorDepth, g.lexicalDepth)));
        const meaning = (
          await searchLayer(prisma, scope, { embedding, model: embedder.model, k: depth })
        ).filter((h) => h.score >= minScore);
        const words = await searchLayerLexical(prisma, scope, {
          text: q.q,
          model: embedder.model,
          k: depth,
        });
        for (const [gi, g] of grid.entries()) {
          const fused = fuseInJs(
            meaning.slice(0, g.vectorDepth).map((h) => h.memory.id),
            words.slice(0, g.lexicalDepth).map((h) => ({ id: h.memory.id, score: h.score })),
            g,
          ).slice(0, maxK);
          const s = scoreRanking(
            fused.map((id) => conv.diaOf.get(id) ?? []),
            q.evidence,
            ks,
          );
          gridRecall[gi]?.push(s.recall[k10Index(ks)] ?? 0);
        }
      }
      const exactOrder = conv.vectors
        .map((v, i) => ({ s: dot(v, embedding), i }))
        .sort((a, b) => b.s - a.s || a.i - b.i)
        .map((x) => x.i);
      rankings.push(['exact', exactOrder.map((i) => [conv.turns[i]?.dia_id as string])]);
      rankings.push(['bm25', bm25.rank(q.q).map((i) => [conv.turns[i]?.dia_id as string])]);
      rankings.push([
        'bm25-dated',
        bm25Dated.rank(q.q).map((i) => [conv.turns[i]?.dia_id as string]),
      ]);

      const r: QuestionResult = {
        sample: conv.sample,
        category: q.category,
        evidence: q.evidence.size,
        recall: {},
        hit: {},
      };
      for (const [name, ranking] of rankings) {
        const s = scoreRanking(ranking, q.evidence, ks);
        r.recall[name] = s.recall;
        r.hit[name] = s.hit;
      }
      r.recall.random = ks.map((k) => Math.min(k, n) / n);
      r.hit.random = ks.map((k) => randomHit(n, q.evidence.size, k));
      results.push(r);
    }
  }
  await saveCache();
  const totalSeconds = (performance.now() - started) / 1000;

  // 3. Report.
  const projectRankers = PROJECT_RANKERS.filter((rk) => selected.has(rk));
  const rankers = [
    ...projectRankers.flatMap((rk) =>
      rk === 'project' ? [rk, `project_minScore${minScore}`] : [rk],
    ),
    'exact',
    'bm25',
    'bm25-dated',
    'random',
  ];
  const byCategory = Object.fromEntries(
    Object.keys(CATEGORY_NAMES).map((c) => [
      c,
      Object.fromEntries(
        rankers.map((rk) => [
          rk,
          aggregate(
            results.filter((r) => r.category === Number(c)),
            rk,
            ks,
          ),
        ]),
      ),
    ]),
  );
  const overall = Object.fromEntries(rankers.map((rk) => [rk, aggregate(results, rk, ks)]));
  const byConversation = loaded.map((c) => {
    const rs = results.filter((r) => r.sample === c.sample);
    return {
      sample: c.sample,
      turns: c.turns.length,
      questions: rs.length,
      ...Object.fromEntries(projectRankers.map((rk) => [rk, aggregate(rs, rk, ks)])),
      random: aggregate(rs, 'random', ks),
    } as {
      sample: string;
      turns: number;
      questions: number;
      random: ReturnType<typeof aggregate>;
    } & Record<string, ReturnType<typeof aggregate>>;
  });
  const k10 = ks.indexOf(10) >= 0 ? ks.indexOf(10) : ks.length - 1;
  const kLabel = ks[k10];

  const pct = (x: number | undefined) =>
    x === undefined || Number.isNaN(x) ? 'n/a' : `${(x * 100).toFixed(1)}%`;
  const ratio = (a: number | undefined, b: number | undefined) =>
    a === undefined || b === undefined || !Number.isFinite(a / b)
      ? 'n/a'
      : `${(a / b).toFixed(1)}x`;
  const describe: Record<string, string> = {
    project: 'project: searchLayer (vector, cosine)',
    [`project_minScore${minScore}`]: `searchLayer + RECALL_MIN_SCORE=${minScore}`,
    'project-lexical': 'project: searchLayerLexical (BM25 in SQL)',
    'project-hybrid': 'project: searchLayerHybrid (vector + BM25, weighted RRF)',
    'turn-recall': 'turn-recall: recallForTurn as a chat turn runs it',
    'bm25-dated': 'BM25 in JS, turn + session date in words (reference)',
    exact: 'exact cosine in JS (same vectors)',
    bm25: 'BM25 in JS (lexical reference)',
    random: 'random ranking (expected)',
  };

  const m = machineInfo();
  const out: string[] = [];
  out.push(
    `LoCoMo retrieval — ${samples.length} conversations, ${loaded.reduce((a, c) => a + c.turns.length, 0)} turns stored, ${results.length} questions (categories 1-4 with evidence)`,
  );
  out.push(
    `database: ${bench.kind} ${bench.server.version}, pgvector ${bench.server.pgvector}; embedder: ${embedder.provider} ${embedder.model}; mode: ${mode}`,
  );
  out.push(
    `machine: ${m.nproc} cores, ${m.cpuModel}, Node ${m.node}, load average ${m.loadAverage.join(' ')}; source ${m.revision}`,
  );
  for (const pr of projectRankers) {
    out.push('');
    out.push(
      `${describe[pr]}, per category (recall@k = mean fraction of evidence turns in top k; hit@k = any evidence in top k):`,
    );
    out.push(
      table(
        [
          'category',
          'n',
          ...ks.map((k) => `R@${k}`),
          ...ks.map((k) => `hit@${k}`),
          `random R@${kLabel}`,
          `x random@${kLabel}`,
        ],
        [
          ...Object.entries(CATEGORY_NAMES).map(([c, name]) => {
            const p = byCategory[c]?.[pr];
            const rnd = byCategory[c]?.random;
            return [
              `${c} ${name}`,
              p?.n ?? 0,
              ...ks.map((_, i) => pct(p?.recall[i])),
              ...ks.map((_, i) => pct(p?.hit[i])),
              pct(rnd?.recall[k10]),
              ratio(p?.recall[k10], rnd?.recall[k10]),
            ];
          }),
          [
            'all',
            overall[pr]?.n ?? 0,
            ...ks.map((_, i) => pct(overall[pr]?.recall[i])),
            ...ks.map((_, i) => pct(overall[pr]?.hit[i])),
            pct(overall.random?.recall[k10]),
            ratio(overall[pr]?.recall[k10], overall.random?.recall[k10]),
          ],
        ],
      ),
    );
  }
  out.push('');
  out.push('All categories, by ranker (same questions, same stored texts):');
  out.push(
    table(
      [
        'ranker',
        ...ks.map((k) => `R@${k}`),
        ...ks.map((k) => `hit@${k}`),
        ...ks.map((k) => `R@${k}/random`),
      ],
      rankers.map((rk) => [
        describe[rk] ?? rk,
        ...ks.map((_, i) => pct(overall[rk]?.recall[i])),
        ...ks.map((_, i) => pct(overall[rk]?.hit[i])),
        ...ks.map((_, i) => ratio(overall[rk]?.recall[i], overall.random?.recall[i])),
      ]),
    ),
  );
  out.push('');
  out.push(`Per conversation (R@${kLabel}):`);
  out.push(
    table(
      ['conversation', 'turns', 'questions', ...projectRankers, 'random'],
      byConversation.map((c) => [
        c.sample,
        c.turns,
        c.questions,
        ...projectRankers.map((pr) => pct(c[pr]?.recall[k10])),
        pct(c.random.recall[k10]),
      ]),
    ),
  );
  const latencies = Object.fromEntries(
    projectRankers.map((rk) => [rk, summarize(latencyMs[rk] ?? [])]),
  );
  out.push('');
  out.push(
    table(
      [`latency per search (one layer, k = ${maxK})`, 'p50 ms', 'p95 ms', 'n'],
      projectRankers.map((rk) => [
        describe[rk] ?? rk,
        latencies[rk]?.p50.toFixed(2),
        latencies[rk]?.p95.toFixed(2),
        latencies[rk]?.n,
      ]),
    ),
  );
  if (useVector) {
    out.push(
      `vector: questions with fewer than ${maxK} rows returned: ${shortResults}; ` +
        `questions whose top-k set differs from exact: ${setMismatch}`,
    );
  }
  if (selected.has('project-lexical')) {
    out.push(
      `lexical: questions where any turn matched a word: ${lexicalMatched}/${results.length}`,
    );
  }
  const gridRows = grid.map((g, i) => {
    const rs = gridRecall[i] ?? [];
    return { ...g, recallAtK: round(rs.reduce((a, b) => a + b, 0) / Math.max(1, rs.length), 4) };
  });
  if (gridRows.length > 0) {
    out.push('');
    out.push(
      `--fusion-grid: weighted RRF (searchLayerHybrid's, in JS over the two SQL rankings) R@${kLabel} over all ${results.length} questions per setting (vector weight 1, minScore ${minScore}):`,
    );
    out.push(
      table(
        ['rrfK', 'lexical weight', 'depths', `R@${kLabel}`],
        [...gridRows]
          .sort((a, b) => b.recallAtK - a.recallAtK)
          .map((g) => [g.rrfK, g.lexicalWeight, g.vectorDepth, pct(g.recallAtK)]),
      ),
    );
  }
  out.push(
    `embedding: ${loaded.reduce((a, c) => a + c.turns.length, 0)} turns in ${(timings.embedDocsMs / 1000).toFixed(1)} s, ` +
      `inserts ${(timings.insertMs / 1000).toFixed(1)} s, total ${totalSeconds.toFixed(1)} s`,
  );
  out.push(
    `data notes: ${data_notes.skippedCategory5} category-5 questions left out, ${data_notes.skippedNoEvidence} without usable evidence left out, ` +
      `unknown evidence ids dropped: ${data_notes.unknownEvidenceIds.join(', ') || 'none'}; ` +
      `duplicate turn texts: ${data_notes.duplicateTurnTexts}; turns over 500 chars: ${data_notes.turnsOver500Chars}`,
  );
  for (const [which, plan] of Object.entries(plans)) {
    out.push('');
    out.push(`Plan of the first ${which} search (EXPLAIN ANALYZE, BUFFERS):`);
    out.push(plan ?? '(not captured)');
  }
  process.stdout.write(`${out.join('\n')}\n`);

  const shape = (a: ReturnType<typeof aggregate>) => ({
    n: a.n,
    recall: Object.fromEntries(ks.map((k, i) => [`@${k}`, round(a.recall[i] ?? Number.NaN, 4)])),
    hit: Object.fromEntries(ks.map((k, i) => [`@${k}`, round(a.hit[i] ?? Number.NaN, 4)])),
  });
  const latency = (x: ReturnType<typeof summarize>) =>
    Object.fromEntries(Object.entries(x).map(([k, v]) => [k, round(v, 3)]));
  await emitJson(
    {
      benchmark: 'locomo-retrieval',
      data: values.data,
      mode,
      ks,
      machine: m,
      database: { kind: bench.kind, ...bench.server, analyzed: !values['no-analyze'] },
      embedder: { provider: embedder.provider, model: embedder.model },
      memoryText: '<speaker>: <text>[ [shares a photo: <blip_caption>]]',
      questions: results.length,
      rankers: Object.fromEntries(rankers.map((rk) => [rk, describe[rk] ?? rk])),
      overall: Object.fromEntries(
        rankers.map((rk) => [rk, shape(overall[rk] as ReturnType<typeof aggregate>)]),
      ),
      ratioVsRandom: Object.fromEntries(
        rankers.map((rk) => [
          rk,
          Object.fromEntries(
            ks.map((k, i) => [
              `@${k}`,
              round((overall[rk]?.recall[i] ?? 0) / (overall.random?.recall[i] ?? 1), 2),
            ]),
          ),
        ]),
      ),
      byCategory: Object.fromEntries(
        Object.entries(byCategory).map(([c, v]) => [
          `${c} ${CATEGORY_NAMES[Number(c)]}`,
          Object.fromEntries(Object.entries(v).map(([rk, a]) => [rk, shape(a)])),
        ]),
      ),
      byConversation: byConversation.map((c) => ({
        sample: c.sample,
        turns: c.turns,
        questions: c.questions,
        recall: Object.fromEntries(
          [...projectRankers, 'random'].map((rk) => [
            rk,
            shape(c[rk] as ReturnType<typeof aggregate>).recall,
          ]),
        ),
      })),
      searchLatencyMs: {
        ...Object.fromEntries(
          Object.entries(latencies).map(([rk, l]) => [
            rk,
            latency(l as ReturnType<typeof summarize>),
          ]),
        ),
      },
      shortResults: useVector ? shortResults : null,
      lexicalMatchedQuestions: selected.has('project-lexical') ? lexicalMatched : null,
      fusion,
      fusionGrid: gridRows,
      topKSetDiffersFromExact: useVector ? setMismatch : null,
      timingsSeconds: {
        embedDocuments: round(timings.embedDocsMs / 1000, 2),
        insert: round(timings.insertMs / 1000, 2),
        embedQueries: round(timings.embedQueriesMs / 1000, 2),
        total: round(totalSeconds, 2),
      },
      dataNotes: data_notes,
      plans,
    },
    values.json,
  );

  // Leave a shared Postgres as it was.
  if (bench.kind === 'postgres') {
    await prisma.$executeRaw`DELETE FROM users WHERE id = ANY(${userIds}::uuid[])`;
  }
  await embedder.close();
  await bench.close();
}

main().catch((err) => {
  process.stderr.write(`bench/locomo: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
