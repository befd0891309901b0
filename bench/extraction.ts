/**
 * Extraction throughput (DESIGN.md "Benchmarks"): the project's worker (createWorker →
 * extractMemoriesHandler: LLM extraction → guard → batch embed → dedup → rows + history →
 * job done) draining jobs that real `sendMessage` turns enqueued, with the Voyage and
 * OpenRouter fakes answering at once; for 1, 5 and 10 memories per turn (= the embedding batch
 * of a job). Baseline in the same run: the same provider calls made directly (the project's
 * HTTP client against the same fakes, same concurrency), so the ratio is the worker's own cost
 * (database, dedup, bookkeeping). Then the local embedder's batch size: texts/s and RSS at batch
 * sizes 1/8/32/128, one fresh process each.
 *
 *   bash scripts/ci/with-postgres.sh sh -c 'npx tsx bench/extraction.ts --database-url "$PG_ADMIN_URL"'
 *   npx tsx bench/extraction.ts          # embedded PGlite
 *
 * Options: --jobs 150 --candidates 1,5,10 --concurrency 2 --users 20 --embed-batches 1,8,32,128
 *   --embed-texts 160 --json out.json --max-seconds 300
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createApp } from '../src/app.js';
import { createVerifier, mintToken } from '../src/auth/tokens.js';
import { createServices, createWorker, graphqlLimitsFrom } from '../src/composition.js';
import { parseEnv } from '../src/env.js';
import { silentLogger } from '../src/logger.js';
import { DEFAULT_PERSONAS } from '../src/personas/defaults.js';
import { upsertPersonas } from '../src/personas/seed.js';
import { postJson } from '../src/providers/http.js';
import { PERSONAS, SEND_MESSAGE, START_CHAT } from '../test/helpers/operations.js';
import { deadline, emitJson, log, machineInfo, mulberry32, round, table } from './lib/common.js';
import {
  type BenchDatabase,
  createScratchDatabase,
  databaseUrlFrom,
  openBenchDatabase,
} from './lib/db.js';
import { EXTRACTION_MODEL, startFakes, VOYAGE_MODEL } from './lib/fakes.js';

const JWT_SECRET = 'bench-secret-that-is-long-enough-for-hs256-0123456789';

interface WorkerRun {
  candidates: number;
  jobs: number;
  seconds: number;
  jobsPerSecond: number;
  memoriesWritten: number;
  memoriesPerSecond: number;
  dead: number;
  statementsPerJob: number;
  cpuMsPerJob: number;
  baselineJobsPerSecond: number;
  ratioVsBaseline: number;
}

async function count(bench: BenchDatabase, sql: string): Promise<number> {
  const [row] = await bench.query<{ n: number }>(sql);
  return Number(row?.n ?? 0);
}

async function main() {
  const { values } = parseArgs({
    options: {
      'database-url': { type: 'string' },
      jobs: { type: 'string', default: '150' },
      candidates: { type: 'string', default: '1,5,10' },
      concurrency: { type: 'string', default: '2' },
      users: { type: 'string', default: '20' },
      'embed-batches': { type: 'string', default: '1,8,32,128' },
      'embed-texts': { type: 'string', default: '160' },
      json: { type: 'string' },
      'max-seconds': { type: 'string', default: '300' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'usage: tsx bench/extraction.ts [--database-url URL] [--jobs 150] [--candidates 1,5,10] [--concurrency 2]\n' +
        '  [--users 20] [--embed-batches 1,8,32,128] [--embed-texts 160] [--json out.json] [--max-seconds 300]\n',
    );
    return;
  }
  deadline(Number(values['max-seconds']), 'bench/extraction');
  const list = (s: string) =>
    s
      .split(',')
      .map((x) => Number(x.trim()))
      .filter((x) => x > 0);
  const jobsPerRun = Number(values.jobs);
  const concurrency = Number(values.concurrency);
  const nUsers = Number(values.users);
  const started = performance.now();

  const adminUrl = databaseUrlFrom(values['database-url']);
  const scratch = adminUrl ? await createScratchDatabase(adminUrl, 'bench_extract') : null;
  const bench = await openBenchDatabase({ url: scratch?.url, poolSize: 4 });
  const fakes = await startFakes({ memoriesPerExtraction: 1 });
  const runs: WorkerRun[] = [];
  try {
    await upsertPersonas(bench.db.prisma, DEFAULT_PERSONAS);
    const env = parseEnv({
      NODE_ENV: 'production',
      LOG_LEVEL: 'silent',
      JWT_SECRET,
      ...(scratch ? { DATABASE_URL: scratch.url } : {}),
      ...fakes.env,
      WORKER_ENABLED: 'false',
      WORKER_CONCURRENCY: String(concurrency),
      WORKER_POLL_MS: '100',
      // Throughput, not the per-user limiter (60/min by default would defer most jobs).
      MEMORY_WRITES_PER_MINUTE: '10000',
      CHAT_TURNS_PER_MINUTE: '10000',
      CHAT_MAX_CONCURRENT_TURNS: '100',
      MEMORY_MAX_PER_TURN: '10',
    });
    const services = createServices(env, bench.db, silentLogger);
    const app = createApp({
      services,
      verifyToken: createVerifier({ secret: JWT_SECRET, adminUserIds: [] }),
      production: true,
      limits: graphqlLimitsFrom(env),
    });
    const gql = async (query: string, variables: Record<string, unknown>, token: string) => {
      const res = await app.fetch('http://bench/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query, variables }),
      });
      return (await res.json()) as {
        data?: {
          personas?: { edges: { node: { id: string } }[] };
          startChat?: { session: { id: string } };
        };
        errors?: unknown[];
      };
    };
    const users: { token: string; sessionId: string }[] = [];
    for (let i = 0; i < nUsers; i++) {
      const token = await mintToken({ secret: JWT_SECRET }, { sub: randomUUID(), expiresIn: '2h' });
      const p = await gql(PERSONAS, {}, token);
      const s = await gql(START_CHAT, { personaId: p.data?.personas?.edges[0]?.node.id }, token);
      const sessionId = s.data?.startChat?.session.id;
      if (!sessionId) throw new Error(`startChat failed: ${JSON.stringify(s.errors ?? p.errors)}`);
      users.push({ token, sessionId });
    }

    let turn = 0;
    for (const k of list(values.candidates)) {
      fakes.setMemoriesPerExtraction(k);
      log(`${k} memories per turn: enqueueing ${jobsPerRun} jobs with sendMessage (worker off)`);
      for (let j = 0; j < jobsPerRun; j++) {
        const u = users[j % users.length] as (typeof users)[number];
        const r = await gql(
          SEND_MESSAGE,
          {
            sessionId: u.sessionId,
            content: `Turn ${turn} of the benchmark, tell me something`,
            clientMessageId: `t${turn}`,
          },
          u.token,
        );
        turn += 1;
        if (r.errors) throw new Error(`sendMessage failed: ${JSON.stringify(r.errors)}`);
      }
      fakes.trim();
      const memories0 = await count(
        bench,
        'SELECT count(*)::int AS n FROM memories WHERE superseded_by_id IS NULL',
      );
      const worker = createWorker(env, services);
      services.setWake(() => worker.wake());
      bench.tap.reset();
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      worker.start();
      let polls = 0;
      for (;;) {
        await new Promise((r) => setTimeout(r, 50));
        polls += 1;
        const open = await count(
          bench,
          "SELECT count(*)::int AS n FROM jobs WHERE status IN ('PENDING', 'RUNNING')",
        );
        if (open === 0) break;
      }
      const seconds = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      // The worker's statements only: this loop's polls went through the same driver.
      const statements = bench.tap.count - polls;
      await worker.stop(5000);
      const written =
        (await count(
          bench,
          'SELECT count(*)::int AS n FROM memories WHERE superseded_by_id IS NULL',
        )) - memories0;
      const dead = await count(bench, "SELECT count(*)::int AS n FROM jobs WHERE status = 'DEAD'");

      // Baseline: the same provider calls straight through the project's HTTP client.
      log(`  baseline: ${jobsPerRun} × (LLM call + embedding of ${k}) without the worker`);
      const random = mulberry32(k);
      let next = 0;
      const b0 = performance.now();
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < jobsPerRun) {
            next += 1;
            await postJson({
              label: 'openrouter',
              url: `${fakes.openrouter.url}/chat/completions`,
              apiKey: fakes.openrouter.apiKey,
              body: {
                model: EXTRACTION_MODEL,
                messages: [{ role: 'user', content: `turn ${random()}` }],
              },
              timeoutMs: 10_000,
              maxRetries: 0,
              logger: silentLogger,
            });
            await postJson({
              label: 'voyage',
              url: `${fakes.voyage.url}/embeddings`,
              apiKey: fakes.voyage.apiKey,
              body: {
                input: Array.from(
                  { length: k },
                  (_, i) => `The user enjoys thing ${i} ${random()}`,
                ),
                model: VOYAGE_MODEL,
                input_type: 'document',
                truncation: true,
              },
              timeoutMs: 10_000,
              maxRetries: 0,
              logger: silentLogger,
            });
          }
        }),
      );
      const baselineSeconds = (performance.now() - b0) / 1000;
      fakes.trim();
      const jobsPerSecond = jobsPerRun / seconds;
      const baselineJobsPerSecond = jobsPerRun / baselineSeconds;
      runs.push({
        candidates: k,
        jobs: jobsPerRun,
        seconds,
        jobsPerSecond,
        memoriesWritten: written,
        memoriesPerSecond: written / seconds,
        dead,
        // PGlite's tap cannot see statements inside transactions: only counted on Postgres.
        statementsPerJob: bench.kind === 'postgres' ? statements / jobsPerRun : Number.NaN,
        cpuMsPerJob: (cpu.user + cpu.system) / 1000 / jobsPerRun,
        baselineJobsPerSecond,
        ratioVsBaseline: jobsPerSecond / baselineJobsPerSecond,
      });
      log(`  ${jobsPerSecond.toFixed(1)} jobs/s, ${written} memories written, ${dead} dead`);
    }
  } finally {
    await bench.close();
    await scratch?.drop();
    await fakes.close();
  }

  // Local embedder batch sizes, one process each.
  const embedRuns: {
    batchSize: number;
    texts: number;
    loadMs: number;
    textsPerSecond: number;
    rssMiB: Record<string, number>;
  }[] = [];
  const batches = list(values['embed-batches']);
  if (batches.length > 0) {
    const dir = await mkdtemp(join(tmpdir(), 'bench-embed-'));
    try {
      const random = mulberry32(7);
      const words =
        'I my we the a to and love work sister dog hiking nurse Lisbon guitar ramen marathon book coffee rain'.split(
          ' ',
        );
      const texts = Array.from({ length: Number(values['embed-texts']) }, () => {
        const n = 5 + Math.floor(random() * 25);
        return Array.from({ length: n }, () => words[Math.floor(random() * words.length)]).join(
          ' ',
        );
      });
      const file = join(dir, 'texts.json');
      await writeFile(file, JSON.stringify(texts));
      for (const b of batches) {
        log(`local embedder, batch size ${b}`);
        const line = await new Promise<string>((resolve, reject) => {
          const child = spawn(
            process.execPath,
            ['--import', 'tsx', 'bench/lib/embed-child.ts', String(b), file],
            {
              stdio: ['ignore', 'pipe', 'pipe'],
            },
          );
          let out = '';
          let err = '';
          child.stdout.on('data', (c: Buffer) => {
            out += c.toString();
          });
          child.stderr.on('data', (c: Buffer) => {
            err += c.toString();
          });
          child.on('exit', (code) =>
            code === 0 ? resolve(out.trim().split('\n').pop() ?? '') : reject(new Error(err)),
          );
        });
        embedRuns.push(JSON.parse(line));
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  const m = machineInfo();
  const out: string[] = [];
  out.push(
    `Extraction throughput — ${m.nproc} cores (${m.cpuModel}), Node ${m.node}, ${bench.kind} ${bench.server.version} + pgvector ${bench.server.pgvector}; load average at end ${m.loadAverage.join(' ')}; source ${m.revision}`,
  );
  out.push(
    `worker: createWorker (WORKER_CONCURRENCY=${concurrency}), jobs enqueued by real sendMessage turns over ${nUsers} users, Voyage + OpenRouter fakes in this process answering at once; MEMORY_WRITES_PER_MINUTE raised so the limiter does not defer jobs.`,
  );
  out.push(
    table(
      [
        'memories/turn',
        'jobs',
        'seconds',
        'jobs/s',
        'memories/s',
        'written',
        'dead',
        'SQL stmts/job',
        'CPU ms/job',
        'baseline jobs/s',
        'worker/baseline',
      ],
      runs.map((r) => [
        r.candidates,
        r.jobs,
        round(r.seconds, 2),
        round(r.jobsPerSecond, 1),
        round(r.memoriesPerSecond, 1),
        r.memoriesWritten,
        r.dead,
        round(r.statementsPerJob, 1),
        round(r.cpuMsPerJob, 2),
        round(r.baselineJobsPerSecond, 1),
        `${r.ratioVsBaseline.toFixed(3)}x`,
      ]),
    ),
  );
  if (embedRuns.length > 0) {
    const base = embedRuns.find((e) => e.batchSize === 32) ?? embedRuns[0];
    out.push('');
    out.push(
      'Local embedder (Universal Sentence Encoder lite) by batch size, one process each (5–30-word texts):',
    );
    out.push(
      table(
        ['batch', 'texts', 'load ms', 'texts/s', 'vs batch 32', 'RSS loaded MiB', 'RSS after MiB'],
        embedRuns.map((e) => [
          e.batchSize,
          e.texts,
          e.loadMs,
          e.textsPerSecond,
          base ? `${(e.textsPerSecond / base.textsPerSecond).toFixed(2)}x` : '',
          e.rssMiB.loaded,
          e.rssMiB.after,
        ]),
      ),
    );
  }
  process.stdout.write(`${out.join('\n')}\n`);
  await emitJson(
    {
      benchmark: 'extraction',
      machine: m,
      database: { kind: bench.kind, ...bench.server },
      workerConcurrency: concurrency,
      users: nUsers,
      runs: runs.map((r) =>
        Object.fromEntries(Object.entries(r).map(([k, v]) => [k, round(v, 3)])),
      ),
      localEmbedder: embedRuns,
      seconds: round((performance.now() - started) / 1000, 1),
    },
    values.json,
  );
}

main().catch((err) => {
  process.stderr.write(
    `bench/extraction: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
