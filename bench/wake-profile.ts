/**
 * Where a wake-up's CPU goes (BENCHMARKS.md §4): starts the compiled server (`npm run build`
 * first) on a migrated PostgreSQL database under `node --cpu-prof`, makes a new user's first turn
 * as bench/footprint.ts's wake-ups do (personas, startChat, sendMessage), stops it, and splits
 * the profile's samples by phase (spawn → listening/healthy, each request) and by where the code
 * lives: a module inside the server bundle (esbuild's `// node_modules/…` markers), an external
 * package (the Prisma client), Node's internals, WebAssembly, GC, or the program's idle time.
 *
 *   bash scripts/ci/with-postgres.sh sh -c 'npx tsx bench/wake-profile.ts --database-url "$PG_ADMIN_URL"'
 *
 * Options: --server-entry dist/src/index.js --runs 3 (profiles summed) --top 25 --json out.json
 *   --returning (a user who already has a session sends one message; default: a new user)
 * CPU profiles sample every 1 ms by default (V8's --cpu-prof-interval, in µs: --interval 1000);
 * the phases come from the bench's own clock (CLOCK_MONOTONIC, which V8's profile timestamps
 * also use), so a phase's samples include what the server did while the bench waited.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { mintToken } from '../src/auth/tokens.js';
import { DEFAULT_PERSONAS } from '../src/personas/defaults.js';
import { upsertPersonas } from '../src/personas/seed.js';
import { PERSONAS, SEND_MESSAGE, START_CHAT } from '../test/helpers/operations.js';
import { emitJson, log, round, table } from './lib/common.js';
import { createScratchDatabase, databaseUrlFrom, openBenchDatabase } from './lib/db.js';
import { startFakes } from './lib/fakes.js';
import { makeClient } from './lib/http-load.js';
import { cpuMs } from './lib/proc.js';
import { spawnServer } from './lib/server.js';

const JWT_SECRET = 'bench-secret-that-is-long-enough-for-hs256-0123456789';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Module of each line of a bundle, from esbuild's `// path/to/file.js` comments. */
async function bundleModules(file: string): Promise<(line: number) => string> {
  const lines = (await readFile(file, 'utf8')).split('\n');
  const starts: { line: number; module: string }[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^\/\/ ((?:node_modules\/)?(?:\.\.\/)*[\w@./-]+\.[cm]?js)$/.exec(lines[i] ?? '');
    if (m?.[1]) starts.push({ line: i, module: m[1] });
  }
  return (line) => {
    let lo = 0;
    let hi = starts.length - 1;
    let found = 'bundle (outer)';
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const s = starts[mid] as { line: number; module: string };
      if (s.line <= line) {
        found = s.module;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  };
}

/** A package name (or the project's own src/) from a module path. */
function packageOf(path: string): string {
  const nm = path.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = path.slice(nm + 'node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : (rest[0] ?? path);
  }
  const src = path.indexOf('src/');
  return src >= 0 ? 'project src/' : path;
}

function categorise(
  frame: ProfileNode['callFrame'],
  bundle: string,
  moduleAt: (line: number) => string,
): string {
  const { url, functionName } = frame;
  if (functionName === '(garbage collector)') return '(gc)';
  if (functionName === '(idle)') return '(idle)';
  if (functionName === '(program)') return '(program: native, compile, …)';
  if (url.startsWith('wasm://')) return 'wasm';
  if (url.startsWith('node:')) return 'node internals';
  if (url === '') return `(native) ${functionName || 'anonymous'}`;
  const file = url.startsWith('file://') ? new URL(url).pathname : url;
  if (resolve(file) === bundle) return packageOf(moduleAt(frame.lineNumber));
  return packageOf(file);
}

interface Phase {
  name: string;
  /** CLOCK_MONOTONIC µs at which the phase ends. */
  endUs: number;
}

async function profileOnce(
  entry: string,
  env: Record<string, string>,
  interval: number,
  returning?: { token: string; sessionId: string },
): Promise<{
  profile: CpuProfile;
  phases: Phase[];
  cpu: Record<string, number>;
  wall: Record<string, number>;
  user: { token: string; sessionId: string };
}> {
  const dir = await mkdtemp(join(tmpdir(), 'wake-profile-'));
  try {
    const nowUs = () => Number(process.hrtime.bigint() / 1000n);
    const server = await spawnServer(entry, env, 'health', [
      '--cpu-prof',
      `--cpu-prof-dir=${dir}`,
      `--cpu-prof-interval=${interval}`,
    ]);
    const phases: Phase[] = [{ name: 'spawn → healthy', endUs: nowUs() }];
    const cpu: Record<string, number> = { healthy: cpuMs(server.pid) };
    const wall: Record<string, number> = { healthy: server.readyAt - server.spawnedAt };
    const client = makeClient(1);
    let user: { token: string; sessionId: string } | undefined;
    try {
      const url = `http://127.0.0.1:${server.port}/graphql`;
      const token =
        returning?.token ??
        (await mintToken({ secret: JWT_SECRET }, { sub: randomUUID(), expiresIn: '2h' }));
      const auth = { authorization: `Bearer ${token}` };
      const post = async (name: string, query: string, variables?: Record<string, unknown>) => {
        const body = JSON.parse(
          (await client.post(url, JSON.stringify({ query, variables }), auth)).body,
        );
        phases.push({ name, endUs: nowUs() });
        cpu[name] = cpuMs(server.pid);
        wall[name] = performance.now() - server.spawnedAt;
        if (body.errors) throw new Error(`${name}: ${JSON.stringify(body.errors)}`);
        return body;
      };
      let sessionId = returning?.sessionId;
      if (!sessionId) {
        const p = await post('personas', PERSONAS);
        const s = await post('startChat', START_CHAT, {
          personaId: p.data?.personas?.edges?.[0]?.node?.id,
        });
        sessionId = s.data?.startChat?.session?.id as string;
      }
      await post('sendMessage', SEND_MESSAGE, {
        sessionId,
        content: returning ? 'I am back.' : 'Hi! I am new here.',
        clientMessageId: randomUUID(),
      });
      user = { token, sessionId };
    } finally {
      client.close();
      await server.stop();
    }
    phases.push({ name: 'after the reply (until exit)', endUs: Number.POSITIVE_INFINITY });
    const [file] = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile'));
    if (!file) throw new Error('no .cpuprofile written');
    const profile = JSON.parse(await readFile(join(dir, file), 'utf8')) as CpuProfile;
    if (!user) throw new Error('no turn');
    return { profile, phases, cpu, wall, user };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      'database-url': { type: 'string' },
      'server-entry': { type: 'string', default: 'dist/src/index.js' },
      runs: { type: 'string', default: '3' },
      top: { type: 'string', default: '25' },
      interval: { type: 'string', default: '1000' },
      json: { type: 'string' },
      returning: { type: 'boolean', default: false },
    },
  });
  const adminUrl = databaseUrlFrom(values['database-url']);
  if (!adminUrl) throw new Error('--database-url (PostgreSQL) is required');
  const entry = values['server-entry'] as string;
  const bundle = resolve(dirname(entry), 'server.cjs');
  const moduleAt = await bundleModules(bundle);
  const fakes = await startFakes({ memoriesPerExtraction: 3 });
  const scratch = await createScratchDatabase(adminUrl, 'bench_wake_profile');
  const bench = await openBenchDatabase({ url: scratch.url, poolSize: 2 });
  const byPhase = new Map<string, Map<string, number>>();
  const byFunction = new Map<string, number>();
  /** Inclusive time (self + callees) per function of the project or the Prisma client. */
  const inclusive = new Map<string, number>();
  const runs: unknown[] = [];
  const loadAtStart = loadavg();
  try {
    await upsertPersonas(bench.db.prisma, DEFAULT_PERSONAS);
    const env = {
      NODE_ENV: 'production',
      LOG_LEVEL: 'info',
      HOST: '127.0.0.1',
      JWT_SECRET,
      METRICS_TOKEN: 'bench-metrics-token-0123456789abcdef',
      DATABASE_URL: scratch.url,
      WORKER_ENABLED: 'false',
      ...fakes.env,
    };
    // --returning: a user with a session (made by one start that is not counted) comes back and
    // sends a message; otherwise a new user: personas, startChat, sendMessage.
    const returning = values.returning
      ? (await profileOnce(entry, env, Number(values.interval))).user
      : undefined;
    for (let r = 0; r < Number(values.runs); r++) {
      const { profile, phases, cpu, wall } = await profileOnce(
        entry,
        env,
        Number(values.interval),
        returning,
      );
      runs.push({
        cpuMs: cpu,
        wallMs: Object.fromEntries(Object.entries(wall).map(([k, v]) => [k, Math.round(v)])),
      });
      log(`run ${r + 1}: wall ${JSON.stringify(runs[runs.length - 1])}`);
      const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
      const parent = new Map<number, number>();
      for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
      let t = profile.startTime;
      for (let i = 0; i < profile.samples.length; i++) {
        const delta = profile.timeDeltas[i] ?? 0;
        t += delta;
        const node = nodes.get(profile.samples[i] as number);
        if (!node) continue;
        const phase = phases.find((p) => t <= p.endUs)?.name ?? 'after';
        const cat = categorise(node.callFrame, bundle, moduleAt);
        const m = byPhase.get(phase) ?? new Map<string, number>();
        byPhase.set(phase, m);
        m.set(cat, (m.get(cat) ?? 0) + delta / 1000);
        if (cat !== '(idle)' && !phase.startsWith('after')) {
          const fn = `${node.callFrame.functionName || '(anonymous)'} [${cat}]`;
          byFunction.set(fn, (byFunction.get(fn) ?? 0) + delta / 1000);
          const seen = new Set<string>();
          for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
            const f = nodes.get(id)?.callFrame;
            if (!f?.functionName) continue;
            const where = categorise(f, bundle, moduleAt);
            if (where !== 'project src/' && !where.includes('prisma')) continue;
            const key = `${f.functionName} [${where}${where === 'project src/' ? ` ${moduleAt(f.lineNumber)}` : ''}]`;
            if (seen.has(key)) continue;
            seen.add(key);
            inclusive.set(key, (inclusive.get(key) ?? 0) + delta / 1000);
          }
        }
      }
    }
  } finally {
    await bench.close();
    await scratch.drop();
    await fakes.close();
  }
  const n = Number(values.runs);
  const top = Number(values.top);
  const summary: Record<string, Record<string, number>> = {};
  for (const [phase, cats] of byPhase) {
    const busy = [...cats].filter(([c]) => c !== '(idle)').reduce((a, [, v]) => a + v, 0);
    const rows = [...cats].sort((a, b) => b[1] - a[1]);
    summary[phase] = Object.fromEntries(rows.map(([c, v]) => [c, round(v / n, 1)]));
    process.stdout.write(
      `\n${phase}: ${round(busy / n, 0)} ms busy per run (idle ${round((cats.get('(idle)') ?? 0) / n, 0)} ms)\n`,
    );
    process.stdout.write(
      `${table(
        ['where', 'ms per run'],
        rows.slice(0, top).map(([c, v]) => [c, round(v / n, 1)]),
      )}\n`,
    );
  }
  const functions = [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top);
  process.stdout.write(
    `\nfunctions (self time, spawn → reply), ms per run:\n${table(
      ['function [where]', 'ms'],
      functions.map(([f, v]) => [f, round(v / n, 1)]),
    )}\n`,
  );
  const inclusiveTop = [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, top * 2);
  process.stdout.write(
    `\nthe project's and Prisma's functions (inclusive time, spawn → reply), ms per run:\n${table(
      ['function [where]', 'ms'],
      inclusiveTop.map(([f, v]) => [f, round(v / n, 1)]),
    )}\n`,
  );
  await emitJson(
    {
      bench: 'wake-profile',
      entry,
      loadAverage: { start: loadAtStart, end: loadavg() },
      runs,
      byPhase: summary,
      functions: Object.fromEntries(functions.map(([f, v]) => [f, round(v / n, 1)])),
      inclusive: Object.fromEntries(inclusiveTop.map(([f, v]) => [f, round(v / n, 1)])),
    },
    values.json,
  );
}

await main();
