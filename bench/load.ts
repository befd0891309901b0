/**
 * Load (sendMessage at concurrency 64): the compiled production server (`node …/src/index.js`,
 * its own process, the [env] of fly.toml — NODE_ENV=production, DATABASE_POOL_SIZE, the
 * NODE_OPTIONS heap cap — with the in-process extraction worker on) on a scratch database of a
 * real Postgres, Voyage and OpenRouter pointed at the project's HTTP fakes (test/fakes, in this
 * process, answering at once; the extraction model returns 3 memories per turn). autocannon
 * drives `sendMessage` over 64 keep-alive connections — each connection its own user (HS256
 * token minted with jose, as the token CLI does) with its own chat session — for a bounded time,
 * every request with a unique clientMessageId and its own text. Reports throughput, latency
 * percentiles, errors (non-2xx, 200s with a GraphQL `errors` array, timeouts, connection
 * errors), the server's RSS (VmRSS from /proc, every second) at start, minute 1, end and peak,
 * V8 heap from the server's /metrics, the extraction queue at the end, and whether the server
 * exits 0 on SIGTERM. All traffic goes to 127.0.0.1.
 *
 * Extraction freshness: every 2 s the extraction lag (age of the oldest due pending job) and the
 * jobs table's rows and size, during the load and the drain. `--worker-process` runs the worker
 * as its own process (`node …/src/worker-main.js`, WORKER_ENABLED=false on the server), as
 * fly.toml's `worker` process group does; otherwise the server's in-process worker runs, with
 * its fair share (WORKER_FAIR_SHARE). `--env JOB_RETENTION_MS=30000` shows pruning keeping the
 * table bounded within a run.
 *
 *   bash scripts/ci/with-postgres.sh npx tsx bench/load.ts --duration 180
 *   bash scripts/ci/with-postgres.sh npx tsx bench/load.ts --short        # ~20 s smoke run
 *
 * The per-user chat limits (CHAT_TURNS_PER_MINUTE, CHAT_STARTS_PER_MINUTE,
 * CHAT_MAX_CONCURRENT_TURNS) are raised so the run measures throughput, not rate limiting; the
 * per-user memory-write limit (MEMORY_WRITES_PER_MINUTE) stays at its production default.
 *
 * Options: --duration 180 (or LOAD_DURATION_SECONDS) --warmup 10 --connections 64 --timeout 30
 *   --memories-per-extraction 3 --node-options "<fly.toml's>" --env KEY=VALUE (repeatable: a server
 *   setting changed for an experiment, e.g. DATABASE_POOL_SIZE=20) --tsx --server-entry <file>
 *   --drain 20 (seconds of watching the worker after the load; 0 skips) --short (20 s + 5 s warm-up,
 *   no drain) --json <file> (default bench/results/load-<timestamp>.json) --max-seconds
 * Exits 2 when a target (zero errors, RSS growth < 10 %, exit 0 on SIGTERM) is missed.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { get } from 'node:http';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import pg from 'pg';
import { mintToken } from '../src/auth/tokens.js';
import { DEFAULT_PERSONAS } from '../src/personas/defaults.js';
import { SEND_MESSAGE, START_CHAT } from '../test/helpers/operations.js';
import { deadline, emitJson, log, machineInfo, mulberry32, round } from './lib/common.js';
import { createScratchDatabase } from './lib/db.js';
import { startFakes } from './lib/fakes.js';
import { flyEnv } from './lib/fly.js';
import { makeClient } from './lib/http-load.js';
import { rssMiB } from './lib/proc.js';
import { buildCompiled, spawnServer } from './lib/server.js';

const JWT_SECRET = 'bench-secret-that-is-long-enough-for-hs256-0123456789';
/** High enough that no connection (one user each, one turn at a time) ever meets a limit. */
const CHAT_LIMITS = {
  CHAT_TURNS_PER_MINUTE: '10000',
  CHAT_STARTS_PER_MINUTE: '1000',
  CHAT_MAX_CONCURRENT_TURNS: '8',
};

const CREATE_PERSONA = /* GraphQL */ `
  mutation Create($input: CreatePersonaInput!) { createPersona(input: $input) { persona { id slug } } }`;

const OPENERS = [
  'Yesterday I went hiking near the lake',
  'Work at the hospital was exhausting again',
  'My sister called from Lisbon this morning',
  'I tried a new ramen place downtown',
  'The job interview went better than expected',
  'I practiced guitar for an hour tonight',
  'There was a thunderstorm and the dog hid',
  'Training run this morning, fifteen kilometres',
  'I finally finished that science fiction novel',
  'We argued about pineapple on pizza at lunch',
];
const WORDS = (
  'apple river guitar nurse marathon ramen thunder puppy garden violin bakery mountain ocean ' +
  'pottery chess sushi tango kayak library comet falcon maple harbor lantern meadow quartz ' +
  'saffron tundra volcano walnut yoga zebra anchor bamboo cactus dolphin ember fjord glacier ' +
  'hammock jasmine kiwi lagoon mango nectar orchid pepper quilt raven sequoia tulip velvet'
).split(' ');

/** A different text per request (the Voyage fake embeds a bag of words, so vectors differ). */
function messageText(random: () => number, n: number): string {
  const pick = () => WORDS[Math.floor(random() * WORDS.length)] as string;
  const opener = OPENERS[Math.floor(random() * OPENERS.length)] as string;
  return `${opener}; it reminded me of ${pick()}, ${pick()} and ${pick()} (message ${n}).`;
}

/** A few series of the server's Prometheus /metrics (prom-client default metrics). */
function scrapeMetrics(port: number): Promise<Record<string, number>> {
  const wanted = [
    'process_resident_memory_bytes',
    'nodejs_heap_size_used_bytes',
    'nodejs_heap_size_total_bytes',
    'nodejs_external_memory_bytes',
    'nodejs_eventloop_lag_p99_seconds',
    'nodejs_active_handles_total',
  ];
  return new Promise((resolve) => {
    const req = get({ host: '127.0.0.1', port, path: '/metrics', timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const out: Record<string, number> = {};
        for (const line of Buffer.concat(chunks).toString('utf8').split('\n')) {
          const m = /^([a-z0-9_]+)(?:\{[^}]*\})? ([-\d.e+]+)/.exec(line);
          if (m && wanted.includes(m[1] as string) && !((m[1] as string) in out)) {
            out[m[1] as string] = Number(m[2]);
          }
        }
        resolve(out);
      });
      res.on('error', () => resolve({}));
    });
    req.on('error', () => resolve({}));
    req.on('timeout', () => {
      req.destroy();
      resolve({});
    });
  });
}

interface Sample {
  /** Seconds since the measured phase started (negative: setup and warm-up). */
  t: number;
  rssMiB: number;
}

interface QueueSample {
  t: number;
  /** Age of the oldest pending job that is due (0: none waiting). */
  lagSeconds: number;
  rows: number;
  done: number;
  tableMiB: number;
  workerRssMiB: number;
}

/** `node …/worker-main.js` with the server's settings; ready at its "worker started" log line. */
async function spawnWorker(
  entry: string,
  env: Record<string, string>,
): Promise<{
  pid: number;
  stop(): Promise<{ code: number | null; signal: string | null }>;
}> {
  const args = entry.endsWith('.ts') ? ['--import', 'tsx', entry] : [entry];
  const child = spawn(process.execPath, args, {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr?.on('data', (c: Buffer) => {
    err = (err + c.toString()).slice(-4000);
  });
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (c: Buffer) => {
      out = (out + c.toString()).slice(-4000);
      if (out.includes('"worker started"')) resolve();
    });
    void exited.then((e) => reject(new Error(`${entry} exited (${e.code ?? e.signal}): ${err}`)));
  });
  // Its per-job log lines are not kept (the pipe is drained, as /dev/null would).
  child.stdout?.removeAllListeners('data');
  child.stdout?.resume();
  return {
    pid: child.pid as number,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const e = await exited;
      clearTimeout(timer);
      return e;
    },
  };
}

interface MetricSample {
  t: number;
  heapUsedMiB: number;
  heapTotalMiB: number;
  externalMiB: number;
  eventLoopLagP99Ms: number;
}

interface Counters {
  responses: number;
  ok: number;
  non200: number;
  graphqlErrors: number;
  byKind: Record<string, number>;
  firstErrors: string[];
  recalled: number;
  /** Successful turns per whole second since the phase started. */
  perSecond: number[];
}

function newCounters(): Counters {
  return {
    responses: 0,
    ok: 0,
    non200: 0,
    graphqlErrors: 0,
    byKind: {},
    firstErrors: [],
    recalled: 0,
    perSecond: [],
  };
}

interface GqlBody {
  data?: {
    sendMessage?: {
      reply?: { id?: string };
      recalled?: { profile: unknown[]; relationship: unknown[] };
    } | null;
  } | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN);

/** Least-squares slope (per minute) of y over t (seconds). */
function slopePerMinute(points: { t: number; y: number }[]): number {
  if (points.length < 3) return Number.NaN;
  const mx = mean(points.map((p) => p.t));
  const my = mean(points.map((p) => p.y));
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.t - mx) * (p.y - my);
    den += (p.t - mx) ** 2;
  }
  return den === 0 ? 0 : (num / den) * 60;
}

async function main() {
  const { values } = parseArgs({
    options: {
      'database-url': { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string', default: '64' },
      timeout: { type: 'string', default: '30' },
      drain: { type: 'string' },
      env: { type: 'string', multiple: true },
      'memories-per-extraction': { type: 'string', default: '3' },
      'node-options': { type: 'string' },
      'server-entry': { type: 'string' },
      tsx: { type: 'boolean', default: false },
      'worker-process': { type: 'boolean', default: false },
      short: { type: 'boolean', default: false },
      json: { type: 'string' },
      'max-seconds': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'usage: tsx bench/load.ts [--database-url URL (default PG_ADMIN_URL, then DATABASE_URL)] [--duration 180] [--warmup 10]\n' +
        '  [--connections 64] [--timeout 30] [--drain 20] [--memories-per-extraction 3] [--node-options "--max-old-space-size=160"]\n' +
        '  [--env KEY=VALUE ...] [--tsx] [--server-entry file] [--worker-process] [--short (20 s + 5 s warm-up, no drain)] [--json out.json] [--max-seconds n]\n' +
        'e.g. bash scripts/ci/with-postgres.sh npx tsx bench/load.ts --duration 180\n',
    );
    return;
  }
  const duration = Number(
    values.duration ?? process.env.LOAD_DURATION_SECONDS ?? (values.short ? 20 : 180),
  );
  const warmup = Number(values.warmup ?? (values.short ? 5 : 10));
  const connections = Number(values.connections);
  const timeoutS = Number(values.timeout);
  const drainSeconds = Number(values.drain ?? (values.short ? 0 : 20));
  if (!(duration > 0 && warmup >= 0 && drainSeconds >= 0 && connections > 0 && timeoutS > 0)) {
    throw new Error(
      '--duration, --connections and --timeout must be positive, --warmup and --drain >= 0',
    );
  }
  const maxSeconds = Number(values['max-seconds'] ?? duration + warmup + drainSeconds + 300);
  deadline(maxSeconds, 'bench/load');
  const adminUrl =
    values['database-url'] ?? process.env.PG_ADMIN_URL ?? process.env.DATABASE_URL ?? '';
  if (!/^postgres(ql)?:\/\//.test(adminUrl)) {
    throw new Error(
      'needs real Postgres: --database-url postgres://… (or PG_ADMIN_URL / DATABASE_URL); e.g. bash scripts/ci/with-postgres.sh npx tsx bench/load.ts',
    );
  }
  const machineBefore = machineInfo();
  log(
    `load average before the run: ${machineBefore.loadAverage.join(' ')} (${machineBefore.nproc} cores)`,
  );

  const fly = await flyEnv();
  const nodeOptions = values['node-options'] ?? fly.NODE_OPTIONS ?? '--max-old-space-size=160';
  const { PORT: _flyPort, ...flyRest } = fly;
  const cleanups: (() => Promise<void>)[] = [];
  const started = performance.now();
  try {
    let entry = values['server-entry'] ?? 'src/index.ts';
    if (!values['server-entry'] && !values.tsx) {
      const built = await buildCompiled('bench/.build/load');
      cleanups.push(built.cleanup);
      entry = built.entry;
    }
    const fakes = await startFakes({
      memoriesPerExtraction: Number(values['memories-per-extraction']),
    });
    cleanups.push(() => fakes.close());
    const scratch = await createScratchDatabase(adminUrl, 'bench_load');
    cleanups.push(() =>
      scratch.drop().catch((e) => log(`could not drop ${scratch.name}: ${(e as Error).message}`)),
    );
    const serverEnv: Record<string, string> = {
      ...flyRest,
      NODE_OPTIONS: nodeOptions,
      HOST: '127.0.0.1',
      JWT_SECRET,
      DATABASE_URL: scratch.url,
      ...fakes.env,
      WORKER_ENABLED: values['worker-process'] ? 'false' : 'true',
      ...CHAT_LIMITS,
    };
    // --env KEY=VALUE (repeatable): a server setting changed for an experiment; reported.
    const overrides: Record<string, string> = {};
    for (const kv of values.env ?? []) {
      const i = kv.indexOf('=');
      if (i <= 0) throw new Error(`--env expects KEY=VALUE, got "${kv}"`);
      overrides[kv.slice(0, i)] = kv.slice(i + 1);
    }
    Object.assign(serverEnv, overrides);
    log(`spawning ${entry} (NODE_OPTIONS=${nodeOptions}, pool ${serverEnv.DATABASE_POOL_SIZE})`);
    const server = await spawnServer(entry, serverEnv, 'health');
    let exit: { code: number | null; signal: string | null } | null = null;
    server.child.once('exit', (code, signal) => {
      exit = { code, signal };
    });
    cleanups.push(() => server.stop());
    // The worker as its own process, with the server's settings (fly.toml's worker group).
    const workerProcess = values['worker-process']
      ? await spawnWorker(entry.replace(/index\.(js|ts)$/, 'worker-main.$1'), serverEnv)
      : null;
    if (workerProcess) {
      cleanups.push(async () => {
        await workerProcess.stop();
      });
    }
    const url = `http://127.0.0.1:${server.port}/graphql`;
    const rssAfterBoot = rssMiB(server.pid);

    // ---- Setup over the API: personas (admin mutation), one user + chat session per connection.
    const http = makeClient(8);
    cleanups.push(async () => http.close());
    const gql = async (token: string, query: string, variables: Record<string, unknown>) => {
      const res = await http.post(url, JSON.stringify({ query, variables }), {
        authorization: `Bearer ${token}`,
      });
      const body = JSON.parse(res.body) as { data?: Record<string, unknown>; errors?: unknown };
      if (res.status !== 200 || body.errors) {
        throw new Error(`setup request failed: HTTP ${res.status} ${res.body.slice(0, 300)}`);
      }
      return body.data ?? {};
    };
    const admin = await mintToken(
      { secret: JWT_SECRET },
      { sub: randomUUID(), admin: true, expiresIn: '2h' },
    );
    const personaIds: string[] = [];
    for (const p of DEFAULT_PERSONAS) {
      const d = await gql(admin, CREATE_PERSONA, {
        input: {
          slug: p.slug,
          name: p.name,
          description: p.description,
          greeting: p.greeting,
          systemPrompt: p.systemPrompt,
          traits: p.traits,
        },
      });
      personaIds.push((d.createPersona as { persona: { id: string } }).persona.id);
    }
    const users: { token: string; sessionId: string }[] = [];
    for (let i = 0; i < connections; i++) {
      const token = await mintToken({ secret: JWT_SECRET }, { sub: randomUUID(), expiresIn: '2h' });
      const d = await gql(token, START_CHAT, {
        personaId: personaIds[i % personaIds.length],
      });
      users.push({ token, sessionId: (d.startChat as { session: { id: string } }).session.id });
    }
    log(`${personaIds.length} personas, ${users.length} users with a chat session each`);

    // ---- Samplers: RSS every second, the server's /metrics every 5 s.
    // Until the measured phase starts (reset below), times count down to its expected start,
    // so setup and warm-up samples are negative and never mix with the measured ones.
    let phaseStart = performance.now() + warmup * 1000;
    const rss: Sample[] = [];
    const metrics: MetricSample[] = [];
    const now = () => (performance.now() - phaseStart) / 1000;
    const rssTimer = setInterval(() => {
      rss.push({ t: now(), rssMiB: rssMiB(server.pid) });
    }, 1000);
    const scrape = async () => {
      const t = now();
      const m = await scrapeMetrics(server.port);
      if (m.nodejs_heap_size_used_bytes === undefined) return;
      metrics.push({
        t,
        heapUsedMiB: (m.nodejs_heap_size_used_bytes ?? Number.NaN) / 2 ** 20,
        heapTotalMiB: (m.nodejs_heap_size_total_bytes ?? Number.NaN) / 2 ** 20,
        externalMiB: (m.nodejs_external_memory_bytes ?? Number.NaN) / 2 ** 20,
        eventLoopLagP99Ms: (m.nodejs_eventloop_lag_p99_seconds ?? Number.NaN) * 1000,
      });
    };
    const metricsTimer = setInterval(() => void scrape(), 5000);
    // Extraction lag and the jobs table, every 2 s, on a connection of its own.
    const monitor = new pg.Client({ connectionString: scratch.url });
    await monitor.connect();
    cleanups.push(() => monitor.end());
    const queue: QueueSample[] = [];
    let sampling = false;
    const sampleQueue = async () => {
      if (sampling) return;
      sampling = true;
      try {
        const t = now();
        const row = (
          await monitor.query<{ lag: number | null; rows: number; done: number; bytes: string }>(
            `SELECT extract(epoch FROM now() - min(run_at) FILTER (WHERE status = 'PENDING' AND run_at <= now()))::float8 AS lag,
                    count(*)::int AS rows, count(*) FILTER (WHERE status = 'DONE')::int AS done,
                    pg_total_relation_size('jobs')::text AS bytes
             FROM jobs`,
          )
        ).rows[0];
        if (row) {
          queue.push({
            t,
            lagSeconds: Math.max(0, row.lag ?? 0),
            rows: row.rows,
            done: row.done,
            tableMiB: Number(row.bytes) / 2 ** 20,
            workerRssMiB: workerProcess ? rssMiB(workerProcess.pid) : Number.NaN,
          });
        }
      } catch {
        // a sample lost to a busy database is just a gap
      } finally {
        sampling = false;
      }
    };
    const queueTimer = setInterval(() => void sampleQueue(), 2000);
    cleanups.push(async () => {
      clearInterval(rssTimer);
      clearInterval(metricsTimer);
      clearInterval(queueTimer);
    });

    // ---- autocannon: connection k is user k % n for the whole run (setupClient runs once per
    // connection); every request gets a fresh body from setupRequest.
    const runId = randomUUID().slice(0, 8);
    const run = async (phase: string, seconds: number, counters: Counters) => {
      let nextConnection = 0;
      const t0 = performance.now();
      const instance = autocannon({
        url,
        connections,
        duration: seconds,
        timeout: timeoutS,
        // A bound on the count too (far above what 2 cores serve): the run can never run away.
        maxOverallRequests: Math.max(connections, Math.ceil(seconds * 2000)),
        title: `sendMessage ${phase}`,
        setupClient: (client) => {
          const k = nextConnection++;
          const user = users[k % users.length] as (typeof users)[number];
          const random = mulberry32(k * 7919 + phase.length);
          let n = 0;
          client.setRequests([
            {
              method: 'POST',
              path: '/graphql',
              headers: {
                'content-type': 'application/json',
                authorization: `Bearer ${user.token}`,
              },
              setupRequest: (request) => {
                n += 1;
                request.body = JSON.stringify({
                  query: SEND_MESSAGE,
                  variables: {
                    sessionId: user.sessionId,
                    content: messageText(random, n),
                    clientMessageId: `${runId}-${phase}-${k}-${n}`,
                  },
                });
                return request;
              },
              onResponse: (status, body) => {
                counters.responses += 1;
                let parsed: GqlBody | null = null;
                try {
                  parsed = JSON.parse(body) as GqlBody;
                } catch {
                  parsed = null;
                }
                const reply = parsed?.data?.sendMessage?.reply?.id;
                if (status === 200 && !parsed?.errors?.length && reply) {
                  counters.ok += 1;
                  const sec = Math.floor((performance.now() - t0) / 1000);
                  counters.perSecond[sec] = (counters.perSecond[sec] ?? 0) + 1;
                  const r = parsed?.data?.sendMessage?.recalled;
                  if (r) counters.recalled += r.profile.length + r.relationship.length;
                  return;
                }
                if (status !== 200) counters.non200 += 1;
                else counters.graphqlErrors += 1;
                const code =
                  parsed?.errors?.[0]?.extensions?.code ?? (parsed ? 'NO_REPLY' : 'NOT_JSON');
                const kind = `HTTP ${status} ${code}`;
                counters.byKind[kind] = (counters.byKind[kind] ?? 0) + 1;
                if (counters.firstErrors.length < 5) {
                  counters.firstErrors.push(`${kind}: ${body.slice(0, 300)}`);
                }
              },
            },
          ]);
        },
      });
      return instance;
    };

    if (warmup > 0) {
      log(`warm-up: ${warmup} s at ${connections} connections`);
      await run('warmup', warmup, newCounters());
    }
    // The measured phase starts here (t = 0).
    phaseStart = performance.now();
    const rssStart = rssMiB(server.pid);
    rss.push({ t: 0, rssMiB: rssStart });
    await scrape();
    log(
      `measuring: ${duration} s at ${connections} connections; RSS at start ${rssStart.toFixed(1)} MiB`,
    );
    const counters = newCounters();
    const progress = setInterval(() => {
      const last = rss[rss.length - 1];
      log(
        `  t=${now().toFixed(0)} s: ${counters.ok} turns, ${counters.non200 + counters.graphqlErrors} errors, RSS ${last?.rssMiB.toFixed(0)} MiB`,
      );
    }, 30_000);
    const result = await run('main', duration, counters);
    clearInterval(progress);
    const loadSeconds = now();
    const rssEnd = rssMiB(server.pid);
    rss.push({ t: loadSeconds, rssMiB: rssEnd });
    await scrape();

    // ---- The extraction queue and what the worker wrote, at the end of the load; then, with
    // no turns, how fast the same worker drains the backlog (--drain seconds).
    const db = new pg.Client({ connectionString: scratch.url });
    await db.connect();
    cleanups.push(() => db.end());
    const queueState = async () =>
      (
        await db.query<Record<string, number>>(
          `SELECT count(*) FILTER (WHERE status = 'PENDING' AND run_at <= now())::int AS pending_runnable,
                  count(*) FILTER (WHERE status = 'PENDING' AND run_at > now())::int AS pending_deferred,
                  count(*) FILTER (WHERE status = 'RUNNING')::int AS running,
                  count(*) FILTER (WHERE status = 'DONE')::int AS done,
                  count(*) FILTER (WHERE status = 'DEAD')::int AS dead,
                  count(*) FILTER (WHERE attempts > 1)::int AS retried,
                  count(*)::int AS total,
                  (SELECT count(*) FROM memories)::int AS memories,
                  (SELECT count(*) FROM messages)::int AS messages
           FROM jobs`,
        )
      ).rows[0] ?? {};
    const jobs = await queueState();
    let drain: {
      seconds: number;
      jobsDone: number;
      jobsPerSecond: number;
      after: Record<string, number>;
      rssEndMiB: number;
    } | null = null;
    if (drainSeconds > 0) {
      log(`load over; watching the worker drain the backlog for ${drainSeconds} s`);
      await new Promise((r) => setTimeout(r, drainSeconds * 1000));
      await sampleQueue();
      const after = await queueState();
      const jobsDone = (after.done ?? 0) + (after.dead ?? 0) - (jobs.done ?? 0) - (jobs.dead ?? 0);
      drain = {
        seconds: drainSeconds,
        jobsDone,
        jobsPerSecond: jobsDone / drainSeconds,
        after,
        rssEndMiB: rssMiB(server.pid),
      };
    }
    clearInterval(rssTimer);
    clearInterval(metricsTimer);
    clearInterval(queueTimer);
    const deadErrors = (
      await db.query<{ last_error: string; n: number }>(
        "SELECT last_error, count(*)::int AS n FROM jobs WHERE status = 'DEAD' GROUP BY 1 ORDER BY 2 DESC LIMIT 3",
      )
    ).rows;
    const counts = { memories: jobs.memories, messages: jobs.messages };

    // ---- SIGTERM: the server drains and must exit 0.
    const stopStarted = performance.now();
    await server.stop();
    const stopMs = performance.now() - stopStarted;
    const workerExit = workerProcess ? await workerProcess.stop() : null;
    const exited = exit as { code: number | null; signal: string | null } | null;
    const exitCode = exited?.code ?? null;
    const machineAfter = machineInfo();

    // ---- Numbers.
    const measured = rss.filter(
      (s) => s.t >= 0 && s.t <= loadSeconds + 0.01 && Number.isFinite(s.rssMiB),
    );
    const mark = duration >= 120 ? 60 : duration / 2;
    const markLabel = mark === 60 ? 'minute 1' : `t=${round(mark, 1)} s (run shorter than 2 min)`;
    const nearest = (t: number) =>
      measured.reduce((best, s) => (Math.abs(s.t - t) < Math.abs(best.t - t) ? s : best));
    const rssMark = nearest(mark).rssMiB;
    const window = (from: number, to: number) =>
      mean(measured.filter((s) => s.t >= from && s.t <= to).map((s) => s.rssMiB));
    const rssMarkMean = window(mark - 5, mark + 5);
    const rssEndMean = window(loadSeconds - 10, loadSeconds);
    const rssPeak = Math.max(...measured.map((s) => s.rssMiB));
    const growthPoint = ((rssEnd - rssMark) / rssMark) * 100;
    const growthMean = ((rssEndMean - rssMarkMean) / rssMarkMean) * 100;
    const slopeAfterMark = slopePerMinute(
      measured.filter((s) => s.t >= mark).map((s) => ({ t: s.t, y: s.rssMiB })),
    );
    const heapAt = (t: number) =>
      metrics.length
        ? metrics.reduce((best, s) => (Math.abs(s.t - t) < Math.abs(best.t - t) ? s : best))
        : undefined;
    const heapMark = heapAt(mark);
    const heapEnd = metrics.filter((s) => s.t <= loadSeconds + 0.01).at(-1);
    const heapSlope = slopePerMinute(
      metrics
        .filter((s) => s.t >= mark && s.t <= loadSeconds + 0.01)
        .map((s) => ({ t: s.t, y: s.heapUsedMiB })),
    );
    const errorsTotal =
      counters.non200 + counters.graphqlErrors + result.errors + result.mismatches;
    const turnsPerSecond = counters.ok / result.duration;
    const perMinute: number[] = [];
    for (let m = 0; m * 60 < result.duration; m++) {
      const secs = counters.perSecond.slice(m * 60, (m + 1) * 60);
      const span = Math.min(60, result.duration - m * 60);
      if (span >= 10) perMinute.push(round(secs.reduce((a, b) => a + (b ?? 0), 0) / span, 1));
    }
    const rssTarget = growthPoint < 10 && growthMean < 10;
    const duringLoad = queue.filter((q) => q.t >= 0 && q.t <= loadSeconds + 0.01);
    const afterLoad = queue.filter((q) => q.t > loadSeconds + 0.01);
    const lag = {
      meanDuringLoad: mean(duringLoad.map((q) => q.lagSeconds)),
      maxDuringLoad: Math.max(0, ...duringLoad.map((q) => q.lagSeconds)),
      atEndOfLoad: duringLoad.at(-1)?.lagSeconds ?? Number.NaN,
      afterDrain: afterLoad.at(-1)?.lagSeconds ?? Number.NaN,
    };
    const table = {
      rowsPeak: Math.max(0, ...queue.filter((q) => q.t >= 0).map((q) => q.rows)),
      rowsAtEnd: queue.at(-1)?.rows ?? Number.NaN,
      doneAtEnd: queue.at(-1)?.done ?? Number.NaN,
      mibPeak: Math.max(0, ...queue.filter((q) => q.t >= 0).map((q) => q.tableMiB)),
      mibAtEnd: queue.at(-1)?.tableMiB ?? Number.NaN,
      /** Rows at each quarter of the measured load: flat when pruning keeps up. */
      rowsByQuarter: [0.25, 0.5, 0.75, 1].map(
        (q) =>
          duringLoad.reduce(
            (best, s) =>
              Math.abs(s.t - q * loadSeconds) < Math.abs(best.t - q * loadSeconds) ? s : best,
            duringLoad[0] ?? { t: 0, rows: Number.NaN },
          ).rows,
      ),
    };
    const workerRssPeak = Math.max(0, ...queue.map((q) => q.workerRssMiB).filter(Number.isFinite));
    const errorTarget = errorsTotal === 0;

    // ---- Report (markdown).
    const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
    const lat = result.latency;
    const out: string[] = [];
    out.push(`## Load: sendMessage at concurrency ${connections}`);
    out.push('');
    out.push(
      `- Machine: ${machineBefore.nproc} cores (${machineBefore.cpuModel}), ${machineBefore.totalMemGiB} GiB, Node ${machineBefore.node}; server, Postgres, fakes and load generator share it. ` +
        `Load average before ${machineBefore.loadAverage.join(' / ')}, after ${machineAfter.loadAverage.join(' / ')}. Source ${machineBefore.revision}.`,
    );
    out.push(
      `- Server: ${entry} (compiled unless --tsx), fly.toml [env] (${Object.entries(flyRest)
        .map(([k, v]) => `${k}=${v}`)
        .join(
          ', ',
        )}), NODE_OPTIONS=${nodeOptions}, worker ${workerProcess ? 'as its own process (worker-main, WORKER_ENABLED=false on the server)' : 'in-process'}, Voyage + OpenRouter fakes answering at once ` +
        `(${values['memories-per-extraction']} memories per extraction).`,
    );
    out.push(
      `- Per-user chat limits raised so this measures throughput, not rate limiting: ${Object.entries(
        CHAT_LIMITS,
      )
        .map(([k, v]) => `${k}=${v}`)
        .join(
          ', ',
        )}; MEMORY_WRITES_PER_MINUTE at its default (jobs over it are deferred, not dropped).`,
    );
    if (Object.keys(overrides).length) {
      out.push(
        `- **Changed for this run** (--env): ${Object.entries(overrides)
          .map(([k, v]) => `${k}=${v}`)
          .join(', ')}.`,
      );
    }
    out.push(
      `- ${connections} connections = ${users.length} users, one chat session each; ${warmup} s warm-up, then ${f(result.duration, 0)} s measured; autocannon timeout ${timeoutS} s.`,
    );
    out.push('');
    out.push('| metric | value |');
    out.push('| --- | --- |');
    out.push(
      `| turns answered | ${counters.ok} (${f(turnsPerSecond)} turns/s; per minute: ${perMinute.join(' / ')}) |`,
    );
    out.push(
      `| latency ms (2xx) | p50 ${lat.p50}, p90 ${lat.p90}, p97.5 ${lat.p97_5}, p99 ${lat.p99}, max ${lat.max} (mean ${f(lat.average)}) |`,
    );
    out.push(
      `| errors | **${errorsTotal}**: non-2xx ${result.non2xx} (ours: ${counters.non200}), 200 with GraphQL errors ${counters.graphqlErrors}, timeouts ${result.timeouts}, connection errors ${result.errors - result.timeouts} |`,
    );
    out.push(
      `| server RSS MiB | after boot ${f(rssAfterBoot)}, start (after warm-up) ${f(rssStart)}, ${markLabel} ${f(rssMark)}, end ${f(rssEnd)}, peak ${f(rssPeak)} |`,
    );
    out.push(
      `| RSS growth ${markLabel} → end | **${f(growthPoint)} %** (single samples); ${f(growthMean)} % (10 s means: ${f(rssMarkMean)} → ${f(rssEndMean)}); slope after ${markLabel} ${f(slopeAfterMark, 2)} MiB/min |`,
    );
    out.push(
      `| V8 heap used / total MiB (/metrics) | ${markLabel} ${f(heapMark?.heapUsedMiB ?? Number.NaN)} / ${f(heapMark?.heapTotalMiB ?? Number.NaN)}, end ${f(heapEnd?.heapUsedMiB ?? Number.NaN)} / ${f(heapEnd?.heapTotalMiB ?? Number.NaN)}; heap-used slope ${f(heapSlope, 2)} MiB/min; external ${f(heapEnd?.externalMiB ?? Number.NaN)} MiB; event-loop lag p99 at end ${f(heapEnd?.eventLoopLagP99Ms ?? Number.NaN)} ms |`,
    );
    out.push(
      `| extraction queue at end | pending ${jobs?.pending_runnable} runnable + ${jobs?.pending_deferred} deferred, running ${jobs?.running}, done ${jobs?.done}, dead ${jobs?.dead} (retried ${jobs?.retried}) of ${jobs?.total}; memories ${counts?.memories}, messages ${counts?.messages} |`,
    );
    if (drain) {
      out.push(
        `| worker drain, no turns (${drain.seconds} s after the load) | ${drain.jobsDone} jobs finished = ${f(drain.jobsPerSecond)} jobs/s (during the load: ${f(((jobs.done ?? 0) + (jobs.dead ?? 0)) / (warmup + loadSeconds))} jobs/s); then pending ${drain.after.pending_runnable} runnable + ${drain.after.pending_deferred} deferred; RSS ${f(drain.rssEndMiB)} MiB |`,
      );
    }
    out.push(
      `| extraction lag (oldest due pending job) | during the load: mean ${f(lag.meanDuringLoad)} s, max ${f(lag.maxDuringLoad)} s; at its end ${f(lag.atEndOfLoad)} s; after the drain ${f(lag.afterDrain)} s |`,
    );
    out.push(
      `| jobs table | rows at each quarter of the load ${table.rowsByQuarter.join(' / ')}, peak ${table.rowsPeak}, at the end ${table.rowsAtEnd} (${table.doneAtEnd} done); size peak ${f(table.mibPeak)} MiB, at the end ${f(table.mibAtEnd)} MiB |`,
    );
    if (workerProcess) {
      out.push(
        `| worker process | RSS peak ${f(workerRssPeak)} MiB; SIGTERM exit ${workerExit?.code ?? workerExit?.signal ?? 'unknown'} |`,
      );
    }
    out.push(
      `| SIGTERM | exit ${exitCode ?? exited?.signal ?? 'unknown'} after ${f(stopMs, 0)} ms |`,
    );
    out.push(
      `| recalled memories per turn | ${f(counters.recalled / Math.max(1, counters.ok), 2)} |`,
    );
    out.push('');
    out.push(
      `Targets: zero errors — ${errorTarget ? 'met' : `**missed** (${errorsTotal})`}; RSS growth ${markLabel} → end under 10 % — ${rssTarget ? 'met' : '**missed**'}; clean exit on SIGTERM — ${exitCode === 0 ? 'met' : '**missed**'}.`,
    );
    if (Object.keys(counters.byKind).length) {
      out.push(`Errors by kind: ${JSON.stringify(counters.byKind)}`);
      for (const e of counters.firstErrors) out.push(`  e.g. ${e}`);
    }
    if (deadErrors.length) out.push(`Dead jobs' errors: ${JSON.stringify(deadErrors)}`);
    if (exitCode !== 0) out.push(`server stderr (tail): ${server.stderr().slice(-1500)}`);
    process.stdout.write(`${out.join('\n')}\n`);

    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const file = values.json ?? `bench/results/load-${stamp}.json`;
    await mkdir(dirname(file), { recursive: true });
    await emitJson(
      {
        benchmark: 'load',
        machine: {
          ...machineBefore,
          loadAverageBefore: machineBefore.loadAverage,
          loadAverageAfter: machineAfter.loadAverage,
        },
        config: {
          serverEntry: entry,
          connections,
          users: users.length,
          durationSeconds: duration,
          warmupSeconds: warmup,
          timeoutSeconds: timeoutS,
          memoriesPerExtraction: Number(values['memories-per-extraction']),
          nodeOptions,
          flyEnv: flyRest,
          chatLimits: CHAT_LIMITS,
          envOverrides: overrides,
          workerProcess: Boolean(workerProcess),
        },
        throughput: {
          turns: counters.ok,
          turnsPerSecond: round(turnsPerSecond, 2),
          perMinute,
          perSecond: counters.perSecond.map((x) => x ?? 0),
          measuredSeconds: round(result.duration, 2),
          autocannonRequestsPerSecondMean: round(result.requests.average, 2),
        },
        latencyMs: {
          p50: lat.p50,
          p90: lat.p90,
          p97_5: lat.p97_5,
          p99: lat.p99,
          max: lat.max,
          mean: round(lat.average, 2),
        },
        errors: {
          total: errorsTotal,
          non2xx: result.non2xx,
          non200Seen: counters.non200,
          graphqlErrors: counters.graphqlErrors,
          timeouts: result.timeouts,
          connectionErrors: result.errors - result.timeouts,
          mismatches: result.mismatches,
          byKind: counters.byKind,
          first: counters.firstErrors,
          statusCodes: result.statusCodeStats,
        },
        rssMiB: {
          afterBoot: round(rssAfterBoot, 1),
          start: round(rssStart, 1),
          mark: {
            label: markLabel,
            t: mark,
            single: round(rssMark, 1),
            mean10s: round(rssMarkMean, 1),
          },
          end: round(rssEnd, 1),
          endMean10s: round(rssEndMean, 1),
          peak: round(rssPeak, 1),
          growthPercent: round(growthPoint, 2),
          growthPercentMeans: round(growthMean, 2),
          slopeAfterMarkMiBPerMinute: round(slopeAfterMark, 3),
          loadEndsAtSeconds: round(loadSeconds, 1),
          /** [t, MiB] from the start of the measured phase, through the drain. */
          samples: rss.filter((s) => s.t >= 0).map((s) => [round(s.t, 1), round(s.rssMiB, 1)]),
        },
        heap: {
          slopeAfterMarkMiBPerMinute: round(heapSlope, 3),
          samples: metrics.map((s) => ({
            t: round(s.t, 1),
            usedMiB: round(s.heapUsedMiB, 1),
            totalMiB: round(s.heapTotalMiB, 1),
            externalMiB: round(s.externalMiB, 1),
            eventLoopLagP99Ms: round(s.eventLoopLagP99Ms, 1),
          })),
        },
        queueAtEnd: { ...jobs, deadErrors },
        extractionLagSeconds: {
          meanDuringLoad: round(lag.meanDuringLoad, 2),
          maxDuringLoad: round(lag.maxDuringLoad, 2),
          atEndOfLoad: round(lag.atEndOfLoad, 2),
          afterDrain: round(lag.afterDrain, 2),
        },
        jobsTable: {
          ...table,
          mibPeak: round(table.mibPeak, 2),
          mibAtEnd: round(table.mibAtEnd, 2),
        },
        workerProcess: workerProcess
          ? { rssPeakMiB: round(workerRssPeak, 1), exit: workerExit }
          : null,
        /** [t, lag s, rows, MiB] every 2 s from the start of the measured phase. */
        queueSamples: queue
          .filter((q) => q.t >= 0)
          .map((q) => [round(q.t, 1), round(q.lagSeconds, 1), q.rows, round(q.tableMiB, 2)]),
        drain,
        shutdown: { exitCode, signal: exited?.signal ?? null, ms: round(stopMs, 0) },
        targets: {
          zeroErrors: errorTarget,
          rssGrowthUnder10Percent: rssTarget,
          cleanExit: exitCode === 0,
        },
        seconds: round((performance.now() - started) / 1000, 1),
      },
      file,
    );
    // Keep the written file in the repository's format (biome checks bench/).
    await new Promise<void>((resolve) => {
      const child = spawn(
        process.execPath,
        ['node_modules/@biomejs/biome/bin/biome', 'format', '--write', file],
        { stdio: 'ignore' },
      );
      child.on('exit', () => resolve());
      child.on('error', () => resolve());
    });
    log(`results written to ${file}`);
    if (!errorTarget || !rssTarget || exitCode !== 0) process.exitCode = 2;
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  }
}

main().catch((err) => {
  process.stderr.write(
    `bench/load: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
