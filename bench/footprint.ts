/**
 * Footprint (DESIGN.md "Operations": steady-state RSS must leave room on 256 MB): the real
 * server (`src/index.ts`, its own process) — RSS at idle, cold start to the first answered
 * sendMessage, and RSS sampled while it serves turns for a few minutes with its in-process
 * worker extracting memories.
 *  - production configuration: real Postgres, Voyage + OpenRouter fakes (answering at once;
 *    the extraction fake returns 3 memories per turn), NODE_ENV=production, worker on.
 *  - zero-config: embedded PGlite in a temp DATA_DIR, the offline embedder (USE lite) and the
 *    offline companion/extractor, NODE_ENV=development (JWT_SECRET set only to mint tokens).
 * Baseline in the same run: a bare graphql-yoga server (idle, and after the same number of
 * do-nothing requests).
 *
 *   bash scripts/ci/with-postgres.sh sh -c 'npx tsx bench/footprint.ts --database-url "$PG_ADMIN_URL"'
 *
 * Options: --minutes 1.5 --zero-config-minutes 0.75 --heap-cap 128 (a second production run with
 *   NODE_OPTIONS=--max-old-space-size=128; 0 skips it) --concurrency 4 --sample-seconds 5
 *   --tsx (run src/index.ts through tsx instead of compiling first) --server-entry <file> --skip-zero-config --json out.json --max-seconds 600
 *   --wake-runs 5 (production only: that many more cold starts on the migrated database, each to
 *   its first answered turn and stopped, for a median, with WORKER_ENABLED=false as fly.toml's
 *   scale-to-zero `app` group; each new user's wake-up — personas, startChat, sendMessage — is
 *   followed by one of that user returning — sendMessage to the same session; 0 skips them)
 * Besides wall times (inflated on a shared machine), every start reports the server's own CPU
 * time (user + system, /proc, with its exited child processes: zero-config's initdb) from spawn
 * to `/health` and to the first reply, which depends far less on what else runs.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { mintToken } from '../src/auth/tokens.js';
import { DEFAULT_PERSONAS } from '../src/personas/defaults.js';
import { upsertPersonas } from '../src/personas/seed.js';
import { PERSONAS, SEND_MESSAGE, START_CHAT } from '../test/helpers/operations.js';
import { deadline, emitJson, log, machineInfo, round, table } from './lib/common.js';
import { createScratchDatabase, databaseUrlFrom, openBenchDatabase } from './lib/db.js';
import { startFakes } from './lib/fakes.js';
import { makeClient, runLoad } from './lib/http-load.js';
import { cpuWithChildrenMs as cpuMs, rssMiB } from './lib/proc.js';
import { buildCompiled, type Spawned, spawnServer } from './lib/server.js';

const JWT_SECRET = 'bench-secret-that-is-long-enough-for-hs256-0123456789';
const MESSAGES = [
  'I work as a nurse and night shifts are tiring',
  'I love hiking with my dog Rex on weekends',
  'My sister lives in Lisbon and I miss her',
  'I started learning the guitar last month',
  'I am training for a half marathon in October',
  'I prefer tea over coffee, especially green tea',
];

interface Profile {
  config: string;
  spawnToHealthyMs: number;
  spawnToFirstReplyMs: number;
  /** Server CPU time (user + system) from spawn to /health, and to the first reply. */
  cpuToHealthyMs: number;
  cpuToFirstReplyMs: number;
  rssIdleMiB: number;
  samples: { t: number; rssMiB: number }[];
  turns: number;
  errors: number;
  firstError?: string;
  turnsPerSecond: number;
  rssPeakMiB: number;
  rssFinalMiB: number;
  /** Least-squares slope over the second half of the samples (a leak shows up here). */
  slopeMiBPerMinute: number;
  extra: Record<string, unknown>;
}

function slope(samples: { t: number; rssMiB: number }[]): number {
  const half = samples.slice(Math.floor(samples.length / 2));
  if (half.length < 3) return Number.NaN;
  const n = half.length;
  const mx = half.reduce((a, s) => a + s.t, 0) / n;
  const my = half.reduce((a, s) => a + s.rssMiB, 0) / n;
  let num = 0;
  let den = 0;
  for (const s of half) {
    num += (s.t - mx) * (s.rssMiB - my);
    den += (s.t - mx) ** 2;
  }
  return den === 0 ? 0 : (num / den) * 60;
}

async function profileServer(options: {
  config: string;
  entry: string;
  env: Record<string, string>;
  minutes: number;
  concurrency: number;
  sampleSeconds: number;
}): Promise<{ profile: Profile; server: Spawned }> {
  log(`${options.config}: starting ${options.entry}`);
  const server = await spawnServer(options.entry, options.env, 'health');
  const cpuHealthy = cpuMs(server.pid);
  try {
    const driven = await drive(server, options);
    driven.profile.cpuToHealthyMs = cpuHealthy;
    return driven;
  } catch (err) {
    await server.stop();
    throw err;
  }
}

async function drive(
  server: Spawned,
  options: { config: string; minutes: number; concurrency: number; sampleSeconds: number },
): Promise<{ profile: Profile; server: Spawned }> {
  const url = `http://127.0.0.1:${server.port}/graphql`;
  const client = makeClient(options.concurrency + 1);
  const users: { token: string; sessionId: string }[] = [];
  let firstReplyAt = 0;
  let cpuFirstReply = 0;
  for (let i = 0; i < options.concurrency; i++) {
    const token = await mintToken({ secret: JWT_SECRET }, { sub: randomUUID(), expiresIn: '2h' });
    const auth = { authorization: `Bearer ${token}` };
    const p = JSON.parse((await client.post(url, JSON.stringify({ query: PERSONAS }), auth)).body);
    const personaId = p.data?.personas?.edges?.[0]?.node?.id;
    const s = JSON.parse(
      (
        await client.post(
          url,
          JSON.stringify({ query: START_CHAT, variables: { personaId } }),
          auth,
        )
      ).body,
    );
    const sessionId = s.data?.startChat?.session?.id;
    if (!sessionId)
      throw new Error(
        `${options.config}: startChat failed: ${JSON.stringify(s.errors ?? p.errors)}`,
      );
    if (i === 0) {
      const r = JSON.parse(
        (
          await client.post(
            url,
            JSON.stringify({
              query: SEND_MESSAGE,
              variables: { sessionId, content: 'Hi! I am new here.', clientMessageId: 'first' },
            }),
            auth,
          )
        ).body,
      );
      if (r.errors)
        throw new Error(`${options.config}: first sendMessage failed: ${JSON.stringify(r.errors)}`);
      firstReplyAt = performance.now();
      cpuFirstReply = cpuMs(server.pid);
    }
    users.push({ token, sessionId });
  }
  await new Promise((r) => setTimeout(r, 3000));
  const rssIdle = rssMiB(server.pid);
  log(
    `${options.config}: idle RSS ${rssIdle.toFixed(0)} MiB; ${options.minutes} min of turns at concurrency ${options.concurrency}`,
  );
  const samples: { t: number; rssMiB: number }[] = [{ t: 0, rssMiB: rssIdle }];
  const t0 = performance.now();
  const timer = setInterval(() => {
    samples.push({ t: (performance.now() - t0) / 1000, rssMiB: rssMiB(server.pid) });
  }, options.sampleSeconds * 1000);
  const result = await runLoad({
    concurrency: options.concurrency,
    seconds: options.minutes * 60,
    warmupSeconds: 0,
    send: async (w, n) => {
      const u = users[w] as (typeof users)[number];
      const res = await client.post(
        url,
        JSON.stringify({
          query: SEND_MESSAGE,
          variables: {
            sessionId: u.sessionId,
            content: `${MESSAGES[n % MESSAGES.length]} (${n})`,
            clientMessageId: `m${n}`,
          },
        }),
        { authorization: `Bearer ${u.token}` },
      );
      const body = JSON.parse(res.body) as { errors?: { message: string }[] };
      return res.status !== 200 || body.errors
        ? `HTTP ${res.status}: ${body.errors?.[0]?.message ?? ''}`
        : null;
    },
  });
  clearInterval(timer);
  samples.push({ t: (performance.now() - t0) / 1000, rssMiB: rssMiB(server.pid) });
  client.close();
  return {
    server,
    profile: {
      config: options.config,
      spawnToHealthyMs: Math.round(server.readyAt - server.spawnedAt),
      spawnToFirstReplyMs: Math.round(firstReplyAt - server.spawnedAt),
      cpuToHealthyMs: 0,
      cpuToFirstReplyMs: cpuFirstReply,
      rssIdleMiB: rssIdle,
      samples,
      turns: result.completed,
      errors: result.errors,
      firstError: result.firstError,
      turnsPerSecond: result.completed / result.seconds,
      rssPeakMiB: Math.max(...samples.map((s) => s.rssMiB)),
      rssFinalMiB: samples[samples.length - 1]?.rssMiB ?? Number.NaN,
      slopeMiBPerMinute: slope(samples),
      extra: {},
    },
  };
}

interface Wake {
  spawnToHealthyMs: number;
  spawnToFirstReplyMs: number;
  cpuToHealthyMs: number;
  cpuToFirstReplyMs: number;
  loadAverage: number;
}

/** A user with a chat session, left by a new user's wake-up for a returning one's. */
interface Returning {
  token: string;
  sessionId: string;
}

/**
 * One wake-up: spawn, /health, then a first turn as a client does it, then stop. The server CPU
 * time is read at /health and at the reply. A new user (no `returning`) asks for the personas,
 * starts a chat and sends a message; a returning user only sends a message to the session a
 * new user's wake-up left (the usual request that wakes a machine: someone coming back to a
 * conversation).
 */
async function wakeOnce(
  entry: string,
  env: Record<string, string>,
  returning?: Returning,
): Promise<{ wake: Wake; user: Returning }> {
  const loadAverage = loadavg()[0] ?? 0;
  const server = await spawnServer(entry, env, 'health');
  const cpuToHealthyMs = cpuMs(server.pid);
  const client = makeClient(1);
  try {
    const url = `http://127.0.0.1:${server.port}/graphql`;
    const token =
      returning?.token ??
      (await mintToken({ secret: JWT_SECRET }, { sub: randomUUID(), expiresIn: '2h' }));
    const auth = { authorization: `Bearer ${token}` };
    const post = async (query: string, variables?: Record<string, unknown>) =>
      JSON.parse((await client.post(url, JSON.stringify({ query, variables }), auth)).body);
    let sessionId = returning?.sessionId;
    let errors: unknown;
    if (!sessionId) {
      const p = await post(PERSONAS);
      const s = await post(START_CHAT, { personaId: p.data?.personas?.edges?.[0]?.node?.id });
      sessionId = s.data?.startChat?.session?.id;
      errors = s.errors ?? p.errors;
    }
    const r = await post(SEND_MESSAGE, {
      sessionId,
      content: returning ? 'I am back, did you miss me?' : 'Hi! I am new here.',
      clientMessageId: randomUUID(),
    });
    const repliedAt = performance.now();
    const cpuToFirstReplyMs = cpuMs(server.pid);
    if (!r.data?.sendMessage?.reply || !sessionId) {
      throw new Error(`wake-up turn failed: ${JSON.stringify(r.errors ?? errors)}`);
    }
    return {
      wake: {
        spawnToHealthyMs: Math.round(server.readyAt - server.spawnedAt),
        spawnToFirstReplyMs: Math.round(repliedAt - server.spawnedAt),
        cpuToHealthyMs,
        cpuToFirstReplyMs,
        loadAverage,
      },
      user: { token, sessionId },
    };
  } finally {
    client.close();
    await server.stop();
  }
}

function wakeSummaryOf(wakes: readonly Wake[]) {
  return wakes.length === 0
    ? undefined
    : {
        runs: wakes.length,
        medianSpawnToHealthyMs: median(wakes.map((w) => w.spawnToHealthyMs)),
        medianSpawnToFirstReplyMs: median(wakes.map((w) => w.spawnToFirstReplyMs)),
        minSpawnToFirstReplyMs: Math.min(...wakes.map((w) => w.spawnToFirstReplyMs)),
        medianCpuToHealthyMs: median(wakes.map((w) => w.cpuToHealthyMs)),
        medianCpuToFirstReplyMs: median(wakes.map((w) => w.cpuToFirstReplyMs)),
      };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

async function main() {
  const { values } = parseArgs({
    options: {
      'database-url': { type: 'string' },
      minutes: { type: 'string', default: '1.5' },
      'zero-config-minutes': { type: 'string', default: '0.75' },
      'heap-cap': { type: 'string', default: '128' },
      concurrency: { type: 'string', default: '4' },
      'sample-seconds': { type: 'string', default: '5' },
      'server-entry': { type: 'string' },
      tsx: { type: 'boolean', default: false },
      'skip-zero-config': { type: 'boolean', default: false },
      json: { type: 'string' },
      'max-seconds': { type: 'string', default: '600' },
      'wake-runs': { type: 'string', default: '5' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'usage: tsx bench/footprint.ts [--database-url URL] [--minutes 1.5] [--zero-config-minutes 0.75] [--heap-cap 128] [--concurrency 4]\n' +
        '  [--sample-seconds 5] [--tsx] [--server-entry file] [--skip-zero-config] [--json out.json] [--max-seconds 600] [--wake-runs 5]\n',
    );
    return;
  }
  deadline(Number(values['max-seconds']), 'bench/footprint');
  const started = performance.now();
  const concurrency = Number(values.concurrency);
  const sampleSeconds = Number(values['sample-seconds']);
  const adminUrl = databaseUrlFrom(values['database-url']);
  const profiles: Profile[] = [];
  const wakes: Wake[] = [];
  const returningWakes: Wake[] = [];
  const loadAtStart = loadavg();
  const stops: (() => Promise<void>)[] = [];
  let server = { version: '', pgvector: '' };
  try {
    // Production runs compiled JS (Dockerfile: node dist/src/index.js); --tsx runs src/index.ts.
    let entry = values['server-entry'] ?? 'src/index.ts';
    if (!values['server-entry'] && !values.tsx) {
      const built = await buildCompiled();
      stops.push(built.cleanup);
      entry = built.entry;
    }
    // Baseline: bare graphql-yoga, idle and after a burst of do-nothing requests.
    const bare = await spawnServer('bench/lib/bare-yoga.ts', {}, 'stdout');
    stops.push(() => bare.stop());
    await new Promise((r) => setTimeout(r, 1000));
    const bareIdle = rssMiB(bare.pid);
    const bareClient = makeClient(concurrency);
    const bareLoad = await runLoad({
      concurrency,
      seconds: 10,
      warmupSeconds: 0,
      send: async (_w, n) => {
        const res = await bareClient.post(
          `http://127.0.0.1:${bare.port}/graphql`,
          JSON.stringify({
            query:
              'mutation($c: String!) { noop(input: { sessionId: "x", content: $c, clientMessageId: "y" }) { id } }',
            variables: { c: `${MESSAGES[n % MESSAGES.length]}` },
          }),
        );
        return res.status === 200 ? null : `HTTP ${res.status}`;
      },
    });
    bareClient.close();
    const bareAfter = rssMiB(bare.pid);
    await bare.stop();
    stops.pop();

    if (adminUrl) {
      const fakes = await startFakes({ memoriesPerExtraction: 3 });
      stops.push(() => fakes.close());
      const heapCap = Number(values['heap-cap']);
      // As configured (V8 sizes its heap from this 24 GB machine), then with the old space
      // capped the way a 256 MB machine needs it.
      for (const cap of heapCap > 0 ? [0, heapCap] : [0]) {
        const scratch = await createScratchDatabase(adminUrl, 'bench_footprint');
        const bench = await openBenchDatabase({ url: scratch.url, poolSize: 2 });
        try {
          server = bench.server;
          await upsertPersonas(bench.db.prisma, DEFAULT_PERSONAS);
          const production = {
            NODE_ENV: 'production',
            LOG_LEVEL: 'info',
            HOST: '127.0.0.1',
            JWT_SECRET,
            // Production refuses a public /metrics; a token keeps it on the one port.
            METRICS_TOKEN: 'bench-metrics-token-0123456789abcdef',
            DATABASE_URL: scratch.url,
            ...fakes.env,
          };
          const { profile, server: app } = await profileServer({
            config: `production (Postgres, fakes, worker on${cap ? `, --max-old-space-size=${cap}` : ''})`,
            entry,
            env: {
              ...production,
              ...(cap ? { NODE_OPTIONS: `--max-old-space-size=${cap}` } : {}),
            },
            minutes: Number(values.minutes),
            concurrency,
            sampleSeconds,
          });
          const [jobs] = await bench.query<{ pending: number; done: number; dead: number }>(
            "SELECT count(*) FILTER (WHERE status IN ('PENDING', 'RUNNING'))::int AS pending, count(*) FILTER (WHERE status = 'DONE')::int AS done, count(*) FILTER (WHERE status = 'DEAD')::int AS dead FROM jobs",
          );
          const [mem] = await bench.query<{ n: number }>('SELECT count(*)::int AS n FROM memories');
          profile.extra = { jobsAtEnd: jobs, memoriesWritten: mem?.n };
          profiles.push(profile);
          await app.stop();
          // Wake-ups: the same database (migrated, with data), the settings of fly.toml's `app`
          // group, whose machines scale to zero: no in-process worker (it has machines of its
          // own). With one, a start would also pick up the jobs the run above left pending, and
          // how many it got to before the first reply depends on how fast it started.
          const wakeRuns = cap ? 0 : Number(values['wake-runs']);
          // Each new user's wake-up is followed by that user's return (alternating, so both
          // kinds see the same conditions).
          const wakeEnv = { ...production, WORKER_ENABLED: 'false' };
          for (let i = 0; i < wakeRuns; i++) {
            const first = await wakeOnce(entry, wakeEnv);
            wakes.push(first.wake);
            log(`wake-up ${i + 1}/${wakeRuns}, new user: ${JSON.stringify(first.wake)}`);
            const back = await wakeOnce(entry, wakeEnv, first.user);
            returningWakes.push(back.wake);
            log(`wake-up ${i + 1}/${wakeRuns}, returning user: ${JSON.stringify(back.wake)}`);
          }
        } finally {
          await bench.close();
          await scratch.drop();
        }
        fakes.trim();
      }
    } else {
      log('no --database-url / DATABASE_URL: the production configuration is skipped');
    }

    if (!values['skip-zero-config']) {
      const dataDir = await mkdtemp(join(tmpdir(), 'bench-footprint-'));
      stops.push(() => rm(dataDir, { recursive: true, force: true }));
      const { profile, server: app } = await profileServer({
        config: 'zero-config (PGlite, local embedder, offline LLM, worker on)',
        entry,
        env: {
          NODE_ENV: 'development',
          LOG_LEVEL: 'info',
          HOST: '127.0.0.1',
          DATA_DIR: dataDir,
          JWT_SECRET,
        },
        minutes: Number(values['zero-config-minutes']),
        concurrency: Math.min(concurrency, 2),
        sampleSeconds,
      });
      profiles.push(profile);
      await app.stop();
    }

    const m = machineInfo();
    const out: string[] = [];
    out.push(
      `Footprint — ${m.nproc} cores (${m.cpuModel}), Node ${m.node}; load average at end ${m.loadAverage.join(' ')}; source ${m.revision}; server entry ${values['server-entry'] ?? (values.tsx ? 'src/index.ts (tsx)' : 'compiled with tsc -p tsconfig.build.json')}`,
    );
    out.push(
      table(
        [
          'configuration',
          'spawn→healthy ms',
          'spawn→first reply ms',
          'CPU→healthy ms',
          'CPU→first reply ms',
          'RSS idle',
          'RSS peak',
          'RSS final',
          'slope MiB/min',
          'turns',
          'turns/s',
          'errors',
          'vs bare idle',
        ],
        [
          ...profiles.map((p) => [
            p.config,
            p.spawnToHealthyMs,
            p.spawnToFirstReplyMs,
            p.cpuToHealthyMs,
            p.cpuToFirstReplyMs,
            round(p.rssIdleMiB, 0),
            round(p.rssPeakMiB, 0),
            round(p.rssFinalMiB, 0),
            round(p.slopeMiBPerMinute, 1),
            p.turns,
            round(p.turnsPerSecond, 1),
            p.errors,
            `${(p.rssPeakMiB / bareIdle).toFixed(1)}x`,
          ]),
          [
            'bare graphql-yoga (baseline)',
            '',
            '',
            '',
            '',
            round(bareIdle, 0),
            round(bareAfter, 0),
            round(bareAfter, 0),
            '',
            bareLoad.completed,
            round(bareLoad.completed / bareLoad.seconds, 0),
            bareLoad.errors,
            '1.0x',
          ],
        ],
      ),
    );
    const wakeSummary = wakeSummaryOf(wakes);
    const returningWakeSummary = wakeSummaryOf(returningWakes);
    for (const [who, w] of [
      ['new user: personas, startChat, sendMessage', wakeSummary],
      ['returning user: sendMessage', returningWakeSummary],
    ] as const) {
      if (!w) continue;
      out.push(
        `production wake-ups, ${who} (${w.runs}, migrated database, WORKER_ENABLED=false): spawn→healthy median ${w.medianSpawnToHealthyMs} ms, spawn→first reply median ${w.medianSpawnToFirstReplyMs} ms (best ${w.minSpawnToFirstReplyMs}); server CPU to healthy ${w.medianCpuToHealthyMs} ms, to first reply ${w.medianCpuToFirstReplyMs} ms (medians)`,
      );
    }
    for (const p of profiles) {
      if (Object.keys(p.extra).length) out.push(`${p.config}: ${JSON.stringify(p.extra)}`);
      if (p.errors) out.push(`${p.config}: first error: ${p.firstError}`);
    }
    out.push('RSS in MiB; Fly shared-cpu-1x has 256 MB (244 MiB) for the whole machine.');
    process.stdout.write(`${out.join('\n')}\n`);
    await emitJson(
      {
        benchmark: 'footprint',
        machine: m,
        database: server,
        concurrency,
        loadAverageAtStart: loadAtStart,
        wakes,
        wakeSummary,
        returningWakes,
        returningWakeSummary,
        profiles: profiles.map((p) => ({
          ...p,
          rssIdleMiB: round(p.rssIdleMiB, 1),
          rssPeakMiB: round(p.rssPeakMiB, 1),
          rssFinalMiB: round(p.rssFinalMiB, 1),
          slopeMiBPerMinute: round(p.slopeMiBPerMinute, 2),
          turnsPerSecond: round(p.turnsPerSecond, 2),
          samples: p.samples.map((s) => ({ t: round(s.t, 1), rssMiB: round(s.rssMiB, 1) })),
        })),
        bareYoga: {
          rssIdleMiB: round(bareIdle, 1),
          rssAfterMiB: round(bareAfter, 1),
          requests: bareLoad.completed,
        },
        seconds: round((performance.now() - started) / 1000, 1),
      },
      values.json,
    );
  } finally {
    for (const s of stops.reverse()) await s().catch(() => {});
  }
}

main().catch((err) => {
  process.stderr.write(
    `bench/footprint: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
