/**
 * Engine overhead of a chat turn (DESIGN.md "Benchmarks"): the real server (`src/index.ts`,
 * spawned as its own process, NODE_ENV=production, real PostgreSQL) with Voyage and
 * OpenRouter pointed at local HTTP fakes that answer at once, driven with `sendMessage` over
 * HTTP at several concurrencies for a fixed time; the same load against a bare graphql-yoga
 * server with a do-nothing mutation in the same run is the baseline (ratios). Also: SQL
 * statements per turn (counted at the pg driver, in-process), server and Postgres CPU per
 * turn, RSS, and cold start to the first answered sendMessage. The per-user turn limit is one
 * of those statements (`INSERT rate_limits … ON CONFLICT`, the token bucket shared by every
 * process): its own latency and this process's CPU per call are measured alone too.
 *
 *   bash scripts/ci/with-postgres.sh sh -c 'npx tsx bench/turn-overhead.ts --database-url "$PG_ADMIN_URL"'
 *
 * Options: --seconds 15 --warmup 2 --concurrency 1,32 --memories 30 --count-turns 20
 *   --compiled (tsc -p tsconfig.build.json into bench/.build, run with plain node) --server-entry src/index.ts --json out.json
 *   --max-seconds 300 --cpu-prof DIR (the server writes a V8 CPU profile there when it stops)
 *   --fly-env (the server and the bare baseline run with fly.toml's NODE_OPTIONS and
 *   MALLOC_ARENA_MAX, as the production machines do; with --compiled, the bundle's code cache
 *   made for those flags is used) --node-options "<flags>" (instead of fly.toml's, e.g. to try
 *   another heap setting; applies to both servers) --rounds 1 (per concurrency, alternate N slices
 *   of the app and of the baseline, seconds/N each, summed: steadier ratios on a shared machine)
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { createApp } from '../src/app.js';
import { createVerifier, mintToken } from '../src/auth/tokens.js';
import { createServices, graphqlLimitsFrom } from '../src/composition.js';
import { openDatabase } from '../src/db/client.js';
import { rawQueryOf } from '../src/db/raw.js';
import { parseEnv } from '../src/env.js';
import { PostgresRateStore } from '../src/limits-store.js';
import { silentLogger } from '../src/logger.js';
import { insertMemory } from '../src/memory/store.js';
import { DEFAULT_PERSONAS } from '../src/personas/defaults.js';
import { upsertPersonas } from '../src/personas/seed.js';
import { startOpenRouterFake } from '../test/fakes/openrouter-fake.js';
import { fakeEmbedding, startVoyageFake } from '../test/fakes/voyage-fake.js';
import { PERSONAS, SEND_MESSAGE, START_CHAT } from '../test/helpers/operations.js';
import { deadline, emitJson, log, machineInfo, round, summarize, table } from './lib/common.js';
import { createScratchDatabase, databaseUrlFrom, openBenchDatabase } from './lib/db.js';
import { flyEnv } from './lib/fly.js';
import { type LoadResult, makeClient, runLoad } from './lib/http-load.js';
import { clusterCpuMs, cpuMs, postmasterOf, rssMiB, systemCpuMs } from './lib/proc.js';
import { buildCompiled, spawnServer } from './lib/server.js';

const JWT_SECRET = 'bench-secret-that-is-long-enough-for-hs256-0123456789';
const VOYAGE_MODEL = 'voyage-3-lite';

const MEMORY_TEMPLATES = [
  'I work as a nurse at the city hospital on night shifts',
  'I love hiking in the mountains with my dog Rex',
  'My sister Ana lives in Lisbon and visits every summer',
  'I am allergic to cats and to peanuts',
  'I am learning to play the guitar on weekends',
  'My favourite food is ramen with extra egg',
  'I am training for a half marathon in October',
  'I grew up in a small town by the sea',
  'We joked about her terrible puns about coffee',
  'He promised to tell me how the job interview went',
  'I read science fiction books before sleeping',
  'My dog Rex is afraid of thunderstorms',
];
const MESSAGES = [
  'Yesterday I went hiking with Rex near the lake, it was lovely',
  'Work at the hospital was exhausting, another night shift',
  'My sister called from Lisbon, she wants to visit soon',
  'I tried a new ramen place today, what should I cook tonight?',
  'The job interview went well I think, they will call me next week',
  'Can you recommend a science fiction book?',
  'I practiced guitar for an hour, my fingers hurt',
  'There was a thunderstorm and Rex hid under the bed',
  'Training run this morning: 15 km, legs are dead',
  'Tell me one of your terrible coffee puns',
];

interface Gql {
  data?: Record<string, unknown> | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

function parseGql(body: string): Gql {
  try {
    return JSON.parse(body) as Gql;
  } catch {
    return { errors: [{ message: `not JSON: ${body.slice(0, 200)}` }] };
  }
}

/** A statement's kind: BEGIN/COMMIT, or verb + table. */
function classify(sql: string): string {
  const s = sql.trim();
  const tx = /^(BEGIN|COMMIT|ROLLBACK|SET|SAVEPOINT|RELEASE)\b/i.exec(s);
  if (tx) return (tx[1] as string).toUpperCase();
  const verb = (/^\w+/.exec(s)?.[0] ?? '?').toUpperCase();
  const table = /(?:FROM|INTO|UPDATE)\s+(?:"public"\.)?"?(\w+)"?/i.exec(s)?.[1] ?? '?';
  return `${verb} ${table}`;
}

interface PhaseResult {
  server: 'app' | 'bare-yoga';
  concurrency: number;
  requests: number;
  errors: number;
  firstError?: string;
  throughput: number;
  latencyMs: ReturnType<typeof summarize>;
  serverCpuMsPerRequest: number;
  /** The kernel's part of serverCpuMsPerRequest (socket syscalls, mostly). */
  serverSystemCpuMsPerRequest: number;
  postgresCpuMsPerRequest: number | null;
  driverCpuMsPerRequest: number;
  rssMiBAfter: number;
}

async function main() {
  const { values } = parseArgs({
    options: {
      'database-url': { type: 'string' },
      seconds: { type: 'string', default: '15' },
      warmup: { type: 'string', default: '2' },
      concurrency: { type: 'string', default: '1,32' },
      memories: { type: 'string', default: '30' },
      'count-turns': { type: 'string', default: '20' },
      'server-entry': { type: 'string', default: 'src/index.ts' },
      compiled: { type: 'boolean', default: false },
      json: { type: 'string' },
      'max-seconds': { type: 'string', default: '300' },
      'cpu-prof': { type: 'string' },
      'fly-env': { type: 'boolean', default: false },
      'node-options': { type: 'string' },
      rounds: { type: 'string', default: '1' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'usage: tsx bench/turn-overhead.ts --database-url postgres://… [--seconds 15] [--warmup 2] [--concurrency 1,32]\n' +
        '  [--memories 30] [--count-turns 20] [--compiled] [--server-entry src/index.ts] [--json out.json] [--max-seconds 300] [--cpu-prof DIR]\n' +
        '  [--fly-env] [--node-options "<flags>"] [--rounds 1]\n',
    );
    return;
  }
  deadline(Number(values['max-seconds']), 'bench/turn-overhead');
  const adminUrl = databaseUrlFrom(values['database-url']);
  if (!adminUrl) {
    throw new Error(
      'needs real Postgres: --database-url postgres://… (or DATABASE_URL); e.g. bash scripts/ci/with-postgres.sh sh -c \'npx tsx bench/turn-overhead.ts --database-url "$PG_ADMIN_URL"\'',
    );
  }
  const seconds = Number(values.seconds);
  const rounds = Math.max(1, Math.floor(Number(values.rounds)));
  const warmup = Number(values.warmup);
  const concurrencies = values.concurrency
    .split(',')
    .map((x) => Number(x.trim()))
    .filter((x) => x > 0);
  const maxC = Math.max(...concurrencies);
  const memoriesPerLayer = Number(values.memories);
  const started = performance.now();

  const voyage = await startVoyageFake();
  const openrouter = await startOpenRouterFake();
  const scratch = await createScratchDatabase(adminUrl, 'bench_turn');
  const bench = await openBenchDatabase({ url: scratch.url, poolSize: 4 });
  const cleanups: (() => Promise<void>)[] = [];
  try {
    await upsertPersonas(bench.db.prisma, DEFAULT_PERSONAS);
    const [{ pid: backendPid } = { pid: 0 }] = await bench.query<{ pid: number }>(
      'SELECT pg_backend_pid() AS pid',
    );
    const postmaster = postmasterOf(backendPid);
    const serverEnv: Record<string, string> = {
      NODE_ENV: 'production',
      LOG_LEVEL: 'info',
      HOST: '127.0.0.1',
      JWT_SECRET,
      DATABASE_URL: scratch.url,
      EMBEDDINGS_PROVIDER: 'voyage',
      VOYAGE_API_KEY: voyage.apiKey,
      VOYAGE_BASE_URL: voyage.url,
      VOYAGE_MODEL,
      LLM_PROVIDER: 'openrouter',
      OPENROUTER_API_KEY: openrouter.apiKey,
      OPENROUTER_BASE_URL: openrouter.url,
      WORKER_ENABLED: 'false',
      // Production refuses a public /metrics; the bench never scrapes it.
      METRICS_TOKEN: 'bench-metrics-token-0123456789',
      // Overhead, not the per-user limiter.
      CHAT_TURNS_PER_MINUTE: '10000',
      CHAT_MAX_CONCURRENT_TURNS: '100',
    };

    // ---- 1. SQL statements per turn, in-process (the pg driver tap sees every statement).
    log('counting SQL statements per turn (in-process app, same configuration)');
    const env = parseEnv({ ...serverEnv, LOG_LEVEL: 'silent' });
    const inDb = await openDatabase({
      url: scratch.url,
      poolSize: 10,
      logger: silentLogger,
      migrate: false,
    });
    cleanups.push(() => inDb.close());
    const services = createServices(env, inDb, silentLogger);
    const inApp = createApp({
      services,
      verifyToken: createVerifier({ secret: JWT_SECRET, adminUserIds: [] }),
      production: true,
      limits: graphqlLimitsFrom(env),
    });
    const gqlIn = async (query: string, variables: Record<string, unknown>, token: string) => {
      const res = await inApp.fetch('http://bench/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query, variables }),
      });
      return parseGql(await res.text());
    };
    const countUser = randomUUID();
    const countToken = await mintToken({ secret: JWT_SECRET }, { sub: countUser });
    const personasRes = await gqlIn(PERSONAS, {}, countToken);
    const personaId = (
      personasRes.data?.personas as { edges: { node: { id: string } }[] } | undefined
    )?.edges[0]?.node.id;
    if (!personaId) throw new Error(`no persona: ${JSON.stringify(personasRes.errors)}`);
    const chat = await gqlIn(START_CHAT, { personaId }, countToken);
    const countSession = (chat.data?.startChat as { session: { id: string } } | undefined)?.session
      .id;
    if (!countSession) throw new Error(`startChat failed: ${JSON.stringify(chat.errors)}`);
    await preloadMemories(bench, countUser, memoriesPerLayer);
    const perTurn: number[] = [];
    let breakdown: Record<string, number> = {};
    const turnsToCount = Number(values['count-turns']);
    for (let i = 0; i < turnsToCount; i++) {
      bench.tap.reset();
      bench.tap.record = true;
      const r = await gqlIn(
        SEND_MESSAGE,
        {
          sessionId: countSession,
          content: MESSAGES[i % MESSAGES.length],
          clientMessageId: `count-${i}`,
        },
        countToken,
      );
      bench.tap.record = false;
      if (r.errors?.length) throw new Error(`sendMessage failed: ${JSON.stringify(r.errors)}`);
      perTurn.push(bench.tap.count);
      if (i === turnsToCount - 1) {
        breakdown = {};
        for (const t of bench.tap.texts) breakdown[classify(t)] = (breakdown[classify(t)] ?? 0) + 1;
      }
    }
    // A replay (same clientMessageId) is the idempotent path: count it too.
    bench.tap.reset();
    await gqlIn(
      SEND_MESSAGE,
      { sessionId: countSession, content: MESSAGES[0], clientMessageId: 'count-0' },
      countToken,
    );
    const replayStatements = bench.tap.count;
    // The shared turn limit alone: the one statement it adds to a turn, timed in isolation
    // (sequential, c=1), with this process's CPU per call (on the driver, as the server runs it).
    const store = new PostgresRateStore(rawQueryOf(inDb.driver));
    const limiterUsers = Array.from({ length: 32 }, () => randomUUID());
    for (const u of limiterUsers) await store.take(u, 'turns', 10_000);
    bench.tap.reset();
    bench.tap.record = true;
    const limiterCalls = 500;
    const limiterLatency: number[] = [];
    const cpuBefore = process.cpuUsage();
    for (let i = 0; i < limiterCalls; i++) {
      const t0 = performance.now();
      await store.take(limiterUsers[i % limiterUsers.length] as string, 'turns', 10_000);
      limiterLatency.push(performance.now() - t0);
    }
    const cpu = process.cpuUsage(cpuBefore);
    bench.tap.record = false;
    const rateLimit = {
      calls: limiterCalls,
      statementsPerCall: bench.tap.count / limiterCalls,
      latencyMs: summarize(limiterLatency),
      cpuMsPerCall: (cpu.user + cpu.system) / 1000 / limiterCalls,
    };
    await inDb.close();
    cleanups.pop();

    // ---- 2. The real server and the bare baseline, as separate processes.
    let entry = values['server-entry'];
    if (values.compiled) {
      const built = await buildCompiled();
      cleanups.push(built.cleanup);
      entry = built.entry;
    }
    log(`spawning the server (${entry}) and the bare graphql-yoga baseline`);
    const profDir = values['cpu-prof'];
    // The V8/malloc settings of the machines (fly.toml), or none (Node's defaults); the same
    // for the app and the baseline, so the ratio compares the same runtime configuration.
    const fly = values['fly-env'] ? await flyEnv() : {};
    const nodeOptions = values['node-options'] ?? fly.NODE_OPTIONS;
    const runtimeEnv: Record<string, string> = {
      ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}),
      ...(fly.MALLOC_ARENA_MAX ? { MALLOC_ARENA_MAX: fly.MALLOC_ARENA_MAX } : {}),
    };
    const app = await spawnServer(
      entry,
      { ...serverEnv, ...runtimeEnv },
      'health',
      profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [],
    );
    cleanups.push(() => app.stop());
    const rssIdle = rssMiB(app.pid);
    const bare = await spawnServer('bench/lib/bare-yoga.ts', runtimeEnv, 'stdout');
    cleanups.push(() => bare.stop());
    const client = makeClient(maxC + 2);
    cleanups.push(async () => client.close());
    const appUrl = `http://127.0.0.1:${app.port}/graphql`;
    const bareUrl = `http://127.0.0.1:${bare.port}/graphql`;

    // Virtual users: one user, token and chat session each, with memories in both layers.
    const users: { id: string; token: string; sessionId: string }[] = [];
    let firstAnswerAt = 0;
    for (let i = 0; i < maxC; i++) {
      const id = randomUUID();
      const token = await mintToken({ secret: JWT_SECRET }, { sub: id, expiresIn: '2h' });
      const auth = { authorization: `Bearer ${token}` };
      const p = parseGql(
        (await client.post(appUrl, JSON.stringify({ query: PERSONAS }), auth)).body,
      );
      const pid = (p.data?.personas as { edges: { node: { id: string } }[] } | undefined)?.edges[0]
        ?.node.id;
      const s = parseGql(
        (
          await client.post(
            appUrl,
            JSON.stringify({ query: START_CHAT, variables: { personaId: pid } }),
            auth,
          )
        ).body,
      );
      const sessionId = (s.data?.startChat as { session: { id: string } } | undefined)?.session.id;
      if (!sessionId)
        throw new Error(`startChat over HTTP failed: ${JSON.stringify(s.errors ?? p.errors)}`);
      if (i === 0) {
        const first = parseGql(
          (
            await client.post(
              appUrl,
              JSON.stringify({
                query: SEND_MESSAGE,
                variables: { sessionId, content: 'Hello there!', clientMessageId: 'first' },
              }),
              auth,
            )
          ).body,
        );
        if (first.errors?.length)
          throw new Error(`first sendMessage failed: ${JSON.stringify(first.errors)}`);
        firstAnswerAt = performance.now();
      }
      await preloadMemories(bench, id, memoriesPerLayer);
      users.push({ id, token, sessionId });
    }
    const coldStart = {
      spawnToHealthyMs: round(app.readyAt - app.spawnedAt, 0),
      spawnToFirstReplyMs: round(firstAnswerAt - app.spawnedAt, 0),
      note: entry.endsWith('.ts')
        ? 'through tsx (TypeScript transpiled at load; --compiled for plain node); DB already migrated'
        : 'compiled JS; DB already migrated',
    };

    let recalledTotal = 0;
    let recalledTurns = 0;
    const sendTurn = async (w: number, n: number): Promise<string | null> => {
      const u = users[w] as (typeof users)[number];
      const res = await client.post(
        appUrl,
        JSON.stringify({
          query: SEND_MESSAGE,
          variables: {
            sessionId: u.sessionId,
            content: MESSAGES[n % MESSAGES.length],
            clientMessageId: `load-${n}`,
          },
        }),
        { authorization: `Bearer ${u.token}` },
      );
      const body = parseGql(res.body);
      if (res.status !== 200 || body.errors?.length) {
        return `HTTP ${res.status}: ${body.errors?.[0]?.extensions?.code ?? ''} ${body.errors?.[0]?.message ?? res.body.slice(0, 200)}`;
      }
      const recalled = (
        body.data?.sendMessage as { recalled?: { profile: unknown[]; relationship: unknown[] } }
      )?.recalled;
      if (recalled) {
        recalledTotal += recalled.profile.length + recalled.relationship.length;
        recalledTurns += 1;
      }
      return null;
    };
    const sendNoop = async (_w: number, n: number): Promise<string | null> => {
      const res = await client.post(
        bareUrl,
        JSON.stringify({
          query:
            'mutation Send($sessionId: ID!, $content: String!, $clientMessageId: String!) { noop(input: { sessionId: $sessionId, content: $content, clientMessageId: $clientMessageId }) { id content } }',
          variables: {
            sessionId: 'x',
            content: MESSAGES[n % MESSAGES.length],
            clientMessageId: `noop-${n}`,
          },
        }),
        { authorization: 'Bearer not-checked' },
      );
      const body = parseGql(res.body);
      return res.status !== 200 || body.errors?.length
        ? `HTTP ${res.status}: ${res.body.slice(0, 200)}`
        : null;
    };

    const phases: PhaseResult[] = [];
    interface Slice {
      sent: number;
      cpu: number;
      sys: number;
      pgCpu: number | null;
      selfMs: number;
      result: LoadResult;
    }
    const runSlice = async (
      server: 'app' | 'bare-yoga',
      concurrency: number,
      sliceSeconds: number,
      warmupSeconds: number,
    ): Promise<Slice> => {
      const proc = server === 'app' ? app : bare;
      // CPU is read around the whole slice (warm-up included) and divided by all requests sent.
      let sent = 0;
      const cpu0 = cpuMs(proc.pid);
      const sys0 = systemCpuMs(proc.pid);
      const pg0 = server === 'app' && postmaster > 0 ? clusterCpuMs(postmaster) : 0;
      const self0 = process.cpuUsage();
      const send = server === 'app' ? sendTurn : sendNoop;
      const result: LoadResult = await runLoad({
        concurrency,
        seconds: sliceSeconds,
        warmupSeconds,
        send: (w, n) => {
          sent += 1;
          return send(w, n);
        },
      });
      const self = process.cpuUsage(self0);
      return {
        sent,
        cpu: cpuMs(proc.pid) - cpu0,
        sys: systemCpuMs(proc.pid) - sys0,
        pgCpu: server === 'app' && postmaster > 0 ? clusterCpuMs(postmaster) - pg0 : null,
        selfMs: (self.user + self.system) / 1000,
        result,
      };
    };
    const phaseOf = (server: 'app' | 'bare-yoga', concurrency: number, slices: Slice[]) => {
      const sum = (f: (x: Slice) => number) => slices.reduce((a, x) => a + f(x), 0);
      const sent = Math.max(
        1,
        sum((x) => x.sent),
      );
      const completed = sum((x) => x.result.completed);
      const pgCpu = slices.some((x) => x.pgCpu === null) ? null : sum((x) => x.pgCpu ?? 0);
      phases.push({
        server,
        concurrency,
        requests: completed,
        errors: sum((x) => x.result.errors),
        firstError: slices.find((x) => x.result.firstError)?.result.firstError,
        throughput: completed / sum((x) => x.result.seconds),
        latencyMs: summarize(slices.flatMap((x) => x.result.latenciesMs)),
        serverCpuMsPerRequest: sum((x) => x.cpu) / sent,
        serverSystemCpuMsPerRequest: sum((x) => x.sys) / sent,
        postgresCpuMsPerRequest: pgCpu === null ? null : pgCpu / sent,
        driverCpuMsPerRequest: sum((x) => x.selfMs) / sent,
        rssMiBAfter: rssMiB((server === 'app' ? app : bare).pid),
      });
    };
    // With --rounds N, each concurrency alternates N app and N baseline slices of seconds/N
    // (warm-up before the first of each): on a shared machine whose load drifts, both sides of
    // the ratio then see the same conditions.
    for (const c of concurrencies) {
      const slices: Record<'app' | 'bare-yoga', Slice[]> = { app: [], 'bare-yoga': [] };
      for (let r = 0; r < rounds; r++) {
        for (const server of ['app', 'bare-yoga'] as const) {
          log(
            `${server} at concurrency ${c}: ${r === 0 ? `${warmup} s warm-up + ` : ''}${seconds / rounds} s` +
              (rounds > 1 ? ` (round ${r + 1}/${rounds})` : ''),
          );
          slices[server].push(await runSlice(server, c, seconds / rounds, r === 0 ? warmup : 0));
        }
      }
      phaseOf('app', c, slices.app);
      phaseOf('bare-yoga', c, slices['bare-yoga']);
    }
    const rssAfter = rssMiB(app.pid);

    // ---- 3. Report.
    const m = machineInfo();
    const out: string[] = [];
    out.push(
      `Turn overhead — ${m.nproc} cores (${m.cpuModel}), Node ${m.node}, ${bench.server.version} + pgvector ${bench.server.pgvector} on 127.0.0.1; load average at end ${m.loadAverage.join(' ')}; source ${m.revision}`,
    );
    out.push(
      `app: ${entry} (NODE_ENV=production, LOG_LEVEL=info to /dev/null, worker off), Voyage + OpenRouter fakes answering at once; ` +
        `${maxC} users × ${memoriesPerLayer} profile + ${memoriesPerLayer} relationship memories; ${warmup} s warm-up + ${seconds} s per phase; ` +
        `load generator + fakes share one process (keep-alive node:http).`,
    );
    out.push('');
    const rows = phases.map((p) => [
      p.server,
      p.concurrency,
      p.requests,
      p.errors,
      round(p.throughput, 1),
      p.latencyMs.p50,
      p.latencyMs.p95,
      p.latencyMs.p99,
      p.serverCpuMsPerRequest,
      p.serverSystemCpuMsPerRequest,
      p.postgresCpuMsPerRequest ?? '',
      round(p.rssMiBAfter, 0),
    ]);
    out.push(
      table(
        [
          'server',
          'conc',
          'requests',
          'errors',
          'req/s',
          'p50 ms',
          'p95 ms',
          'p99 ms',
          'server CPU ms/req',
          '… of it system',
          'PG CPU ms/req',
          'RSS MiB',
        ],
        rows,
      ),
    );
    out.push('');
    const ratios = concurrencies.map((c) => {
      const a = phases.find((p) => p.server === 'app' && p.concurrency === c);
      const b = phases.find((p) => p.server === 'bare-yoga' && p.concurrency === c);
      return {
        concurrency: c,
        p50: a && b ? a.latencyMs.p50 / b.latencyMs.p50 : Number.NaN,
        p99: a && b ? a.latencyMs.p99 / b.latencyMs.p99 : Number.NaN,
        throughput: a && b ? a.throughput / b.throughput : Number.NaN,
        serverCpu: a && b ? a.serverCpuMsPerRequest / b.serverCpuMsPerRequest : Number.NaN,
      };
    });
    out.push('app / bare graphql-yoga (same run):');
    out.push(
      table(
        ['conc', 'p50 ratio', 'p99 ratio', 'throughput ratio', 'server CPU/req ratio'],
        ratios.map((r) => [
          r.concurrency,
          `${r.p50.toFixed(1)}x`,
          `${r.p99.toFixed(1)}x`,
          `${r.throughput.toFixed(3)}x`,
          `${r.serverCpu.toFixed(1)}x`,
        ]),
      ),
    );
    const steady = summarize(perTurn.slice(1));
    out.push('');
    out.push(
      `SQL statements per turn (pg driver calls = client↔server round trips, in-process app, turns 2-${turnsToCount}): ` +
        `mean ${steady.mean.toFixed(1)}, min ${Math.min(...perTurn.slice(1))}, max ${steady.max}; first turn of the session ${perTurn[0]}; idempotent replay ${replayStatements}`,
    );
    const c1 = phases.find((p) => p.server === 'app' && p.concurrency === 1);
    out.push(
      `shared per-user turn limit (INSERT rate_limits … ON CONFLICT, ${rateLimit.calls} calls alone, c=1): ` +
        `${rateLimit.statementsPerCall.toFixed(2)} statement per turn, p50 ${rateLimit.latencyMs.p50.toFixed(2)} ms, ` +
        `p99 ${rateLimit.latencyMs.p99.toFixed(2)} ms, ${rateLimit.cpuMsPerCall.toFixed(3)} ms of Node CPU per call` +
        (c1
          ? ` = ${((rateLimit.latencyMs.p50 / c1.latencyMs.p50) * 100).toFixed(1)} % of a turn's p50 and ` +
            `${((rateLimit.cpuMsPerCall / c1.serverCpuMsPerRequest) * 100).toFixed(1)} % of its server CPU (c=1)`
          : ''),
    );
    out.push(
      `  last turn: ${Object.entries(breakdown)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k} ×${v}`)
        .join(', ')}`,
    );
    out.push(
      `recalled memories per turn (mean): ${(recalledTotal / Math.max(1, recalledTurns)).toFixed(1)}; ` +
        `cold start: spawn → /health ${coldStart.spawnToHealthyMs} ms, spawn → first sendMessage answered ${coldStart.spawnToFirstReplyMs} ms (${coldStart.note})`,
    );
    out.push(
      `app RSS: idle after start ${round(rssIdle, 0)} MiB, after all phases ${round(rssAfter, 0)} MiB`,
    );
    const errs = phases.filter((p) => p.errors > 0);
    for (const p of errs)
      out.push(`errors in ${p.server} c=${p.concurrency}: ${p.errors}, first: ${p.firstError}`);
    process.stdout.write(`${out.join('\n')}\n`);

    await emitJson(
      {
        benchmark: 'turn-overhead',
        machine: m,
        database: { ...bench.server },
        config: {
          serverEntry: entry,
          runtimeEnv,
          seconds,
          rounds,
          warmup,
          concurrencies,
          memoriesPerLayer,
          worker: false,
          logLevel: 'info (to /dev/null)',
        },
        phases: phases.map((p) => ({
          ...p,
          throughput: round(p.throughput, 2),
          latencyMs: Object.fromEntries(
            Object.entries(p.latencyMs).map(([k, v]) => [k, round(v, 3)]),
          ),
          serverCpuMsPerRequest: round(p.serverCpuMsPerRequest, 3),
          serverSystemCpuMsPerRequest: round(p.serverSystemCpuMsPerRequest, 3),
          postgresCpuMsPerRequest:
            p.postgresCpuMsPerRequest === null ? null : round(p.postgresCpuMsPerRequest, 3),
          driverCpuMsPerRequest: round(p.driverCpuMsPerRequest, 3),
          rssMiBAfter: round(p.rssMiBAfter, 1),
        })),
        ratiosAppOverBare: ratios.map((r) => ({
          concurrency: r.concurrency,
          p50: round(r.p50, 2),
          p99: round(r.p99, 2),
          throughput: round(r.throughput, 4),
          serverCpu: round(r.serverCpu, 2),
        })),
        sqlStatementsPerTurn: {
          method:
            'pg.Client#query calls (the pg driver, under Prisma adapter-pg or called directly by src/db/raw.ts), in-process app with the same configuration',
          steadyMean: round(steady.mean, 2),
          perTurn,
          firstTurnOfSession: perTurn[0],
          idempotentReplay: replayStatements,
          lastTurnBreakdown: breakdown,
        },
        sharedTurnLimit: {
          statement:
            'INSERT rate_limits … ON CONFLICT DO UPDATE … RETURNING (PostgresRateStore.take)',
          calls: rateLimit.calls,
          statementsPerCall: round(rateLimit.statementsPerCall, 2),
          latencyMs: Object.fromEntries(
            Object.entries(rateLimit.latencyMs).map(([k, v]) => [k, round(v, 3)]),
          ),
          cpuMsPerCall: round(rateLimit.cpuMsPerCall, 3),
        },
        recalledPerTurn: round(recalledTotal / Math.max(1, recalledTurns), 2),
        coldStart,
        rssMiB: { idle: round(rssIdle, 1), afterPhases: round(rssAfter, 1) },
        seconds: round((performance.now() - started) / 1000, 1),
      },
      values.json,
    );
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => {});
    await bench.close();
    await scratch
      .drop()
      .catch((e) => log(`could not drop ${scratch.name}: ${(e as Error).message}`));
    await voyage.close();
    await openrouter.close();
  }
}

/** Memories in both layers of a user's first persona instance, written with insertMemory. */
async function preloadMemories(
  bench: Awaited<ReturnType<typeof openBenchDatabase>>,
  userId: string,
  perLayer: number,
): Promise<void> {
  if (perLayer <= 0) return;
  const [inst] = await bench.query<{ id: string }>(
    'SELECT id FROM persona_instances WHERE user_id = $1::uuid LIMIT 1',
    [userId],
  );
  for (const instanceId of [null, inst?.id ?? null]) {
    for (let i = 0; i < perLayer; i++) {
      const content = `${MEMORY_TEMPLATES[i % MEMORY_TEMPLATES.length]} (${instanceId ? 'r' : 'p'}${i})`;
      await insertMemory(bench.db.prisma, {
        scope: { userId, instanceId },
        content,
        category: 'FACT',
        confidence: null,
        embedding: fakeEmbedding(content),
        embeddingModel: VOYAGE_MODEL,
        sourceMessageId: null,
        sourceSessionId: null,
      });
    }
  }
}

main().catch((err) => {
  process.stderr.write(
    `bench/turn-overhead: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
