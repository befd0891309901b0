/**
 * Retrieval quality on LoCoMo (DESIGN.md "Benchmarks"): every turn of a conversation is
 * stored as one PROFILE memory of one fresh user through the project's own code (LocalEmbedder
 * in document mode + `insertMemory`), every question of categories 1–4 with evidence is
 * searched with the project's `searchLayer` (query embedded in query mode), and recall@k of
 * the evidence turns is reported per category and overall.
 *
 *   npx tsx bench/locomo.ts --data ../shared/data/locomo-dev.json [--mode vector]
 *     [--database-url postgres://…] [--conversations N] [--k 5,10,20] [--json out.json]
 *
 * Baselines in the same run: a random ranking (analytic expectation, recall@k = k/N), an exact
 * brute-force cosine ranking in JS over the very same vectors (does the SQL path lose
 * anything?), and a plain BM25 ranking in JS (a lexical reference; the project has no lexical
 * search). Nothing here is tuned on the data.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { PrismaClient } from '@prisma/client';
import { z } from 'zod';
import { envSchema } from '../src/env.js';
import { silentLogger } from '../src/logger.js';
import {
  contentHash,
  insertMemory,
  type LayerScope,
  type ScoredMemory,
  searchLayer,
} from '../src/memory/store.js';
import { LocalEmbedder } from '../src/providers/embeddings/local.js';
import { deadline, emitJson, log, machineInfo, round, summarize, table } from './lib/common.js';
import { databaseUrlFrom, explain, openBenchDatabase } from './lib/db.js';

/** src/memory/store.ts searchLayerHybrid, when the tree has it (looked up at run time). */
type HybridSearch = (
  db: PrismaClient,
  scope: LayerScope,
  query: { embedding: readonly number[]; model: string; k: number; text: string },
) => Promise<ScoredMemory[]>;

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

function turnsOf(conversation: Record<string, unknown>): LocomoTurn[] {
  return Object.keys(conversation)
    .flatMap((k) => {
      const m = SESSION_KEY.exec(k);
      return m ? [{ n: Number(m[1]), turns: conversation[k] as LocomoTurn[] }] : [];
    })
    .sort((a, b) => a.n - b.n)
    .flatMap((s) => s.turns);
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
async function embedByLength(
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

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

async function main() {
  const { values } = parseArgs({
    options: {
      data: { type: 'string' },
      mode: { type: 'string', default: 'vector' },
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
      'usage: tsx bench/locomo.ts --data <locomo.json> [--mode vector|hybrid|both] [--database-url URL]\n' +
        '       [--conversations N] [--k 5,10,20] [--json out.json] [--no-analyze] [--max-seconds 600]\n',
    );
    process.exit(values.help ? 0 : 2);
  }
  const mode = values.mode;
  if (mode !== 'vector' && mode !== 'hybrid' && mode !== 'both') {
    throw new Error(`--mode must be vector, hybrid or both, got ${mode}`);
  }
  // Hybrid search is looked up at run time: the bench works on trees with and without it.
  const store = (await import('../src/memory/store.js')) as Record<string, unknown>;
  const hybridSearch =
    typeof store.searchLayerHybrid === 'function'
      ? (store.searchLayerHybrid as HybridSearch)
      : null;
  if (mode !== 'vector' && !hybridSearch) {
    process.stdout.write(
      'hybrid: not implemented yet (src/memory/store.ts exports no searchLayerHybrid).\n',
    );
    process.exit(2);
  }
  const useVector = mode !== 'hybrid';
  const useHybrid = mode !== 'vector';
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
  const embedder = new LocalEmbedder({ logger: silentLogger });
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
    turns: LocomoTurn[];
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

  // 2. Search every question with the project's searchLayer, and with the baselines.
  const results: QuestionResult[] = [];
  let shortResults = 0;
  let setMismatch = 0;
  const plans: { vector?: string; hybrid?: string } = {};
  const hybridMs: number[] = [];
  let ftsMatched = 0;
  for (const conv of loaded) {
    const t0 = performance.now();
    const qVectors = await embedByLength(
      embedder,
      conv.questions.map((q) => q.q),
      'query',
    );
    timings.embedQueriesMs += performance.now() - t0;
    const bm25 = new Bm25(conv.texts);
    const n = conv.turns.length;
    const scope = { userId: conv.userId, instanceId: null };
    const diaOfHits = (hits: ScoredMemory[]) => hits.map((h) => conv.diaOf.get(h.memory.id) ?? []);
    for (const [qi, q] of conv.questions.entries()) {
      const embedding = qVectors[qi] as number[];
      const rankings: [string, (readonly string[])[]][] = [];
      if (useVector) {
        const capture =
          plans.vector === undefined
            ? bench.tap.captureNext(
                (sql) => sql.includes('FROM') && sql.includes('<=>') && !sql.includes('ts_rank'),
              )
            : undefined;
        const s0 = performance.now();
        const hits = await searchLayer(prisma, scope, {
          embedding,
          model: embedder.model,
          k: maxK,
        });
        timings.searchMs.push(performance.now() - s0);
        if (capture) plans.vector = await explain(bench, await capture);
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
      if (useHybrid && hybridSearch) {
        const capture =
          plans.hybrid === undefined
            ? bench.tap.captureNext((sql) => sql.includes('ts_rank'))
            : undefined;
        const s0 = performance.now();
        const hits = await hybridSearch(prisma, scope, {
          embedding,
          model: embedder.model,
          k: maxK,
          text: q.q,
        });
        hybridMs.push(performance.now() - s0);
        if (capture) plans.hybrid = await explain(bench, await capture);
        // Diagnostic: did the full-text side match any turn at all? (store.ts parses the query
        // with websearch_to_tsquery('english', …), where every word must occur.)
        const [fts] = await bench.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM memories WHERE user_id = $1::uuid AND instance_id IS NULL AND search_tsv @@ websearch_to_tsquery('english', $2)",
          [conv.userId, q.q],
        );
        if ((fts?.n ?? 0) > 0) ftsMatched += 1;
        rankings.push(['project-hybrid', diaOfHits(hits)]);
      }
      const exactOrder = conv.vectors
        .map((v, i) => ({ s: dot(v, embedding), i }))
        .sort((a, b) => b.s - a.s || a.i - b.i)
        .map((x) => x.i);
      rankings.push(['exact', exactOrder.map((i) => [conv.turns[i]?.dia_id as string])]);
      rankings.push(['bm25', bm25.rank(q.q).map((i) => [conv.turns[i]?.dia_id as string])]);

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
  const totalSeconds = (performance.now() - started) / 1000;

  // 3. Report.
  const projectRankers = [
    ...(useVector ? ['project'] : []),
    ...(useHybrid ? ['project-hybrid'] : []),
  ];
  const rankers = [
    ...(useVector ? ['project', `project_minScore${minScore}`] : []),
    ...(useHybrid ? ['project-hybrid'] : []),
    'exact',
    'bm25',
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
    'project-hybrid': 'project: searchLayerHybrid (vector + full text, RRF)',
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
  const search = summarize(timings.searchMs);
  const hybridLatency = summarize(hybridMs);
  out.push('');
  if (useVector) {
    out.push(
      `searchLayer latency: p50 ${search.p50.toFixed(2)} ms, p95 ${search.p95.toFixed(2)} ms (n=${search.n}); ` +
        `questions with fewer than ${maxK} rows returned: ${shortResults}; ` +
        `questions whose top-k set differs from exact: ${setMismatch}`,
    );
  }
  if (useHybrid) {
    out.push(
      `searchLayerHybrid latency: p50 ${hybridLatency.p50.toFixed(2)} ms, p95 ${hybridLatency.p95.toFixed(2)} ms (n=${hybridLatency.n}); ` +
        `questions whose full-text side matched any turn: ${ftsMatched}/${results.length}`,
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
        ...(useVector ? { vector: latency(search) } : {}),
        ...(useHybrid ? { hybrid: latency(hybridLatency) } : {}),
      },
      shortResults: useVector ? shortResults : null,
      fullTextMatchedQuestions: useHybrid ? ftsMatched : null,
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
