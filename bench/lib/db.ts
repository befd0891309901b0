/**
 * Opens the database a benchmark runs against, through the project's own `openDatabase`
 * (so the same migrations and Prisma adapters are measured), plus a driver-level "SQL tap":
 * every statement the pg driver (or the PGlite instance) is asked to run is counted, and
 * can be captured with its parameters, e.g. to EXPLAIN exactly what `searchLayer` sent.
 */
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import pg from 'pg';
import { type Database, openDatabase } from '../../src/db/client.js';
import { silentLogger } from '../../src/logger.js';

export interface CapturedQuery {
  sql: string;
  params: unknown[];
}

export interface SqlTap {
  /** Statements sent to the server since the last reset (one per driver `query` call). */
  readonly count: number;
  /** Statement texts since the last reset (only when `record` is on). */
  readonly texts: string[];
  record: boolean;
  reset(): void;
  /** The next statement whose text matches is kept with its parameters. */
  captureNext(match: (sql: string) => boolean): Promise<CapturedQuery>;
}

function makeTap(): SqlTap & { see(sql: string, params: unknown[]): void } {
  let count = 0;
  const texts: string[] = [];
  let waiting: { match: (sql: string) => boolean; resolve: (q: CapturedQuery) => void }[] = [];
  return {
    get count() {
      return count;
    },
    texts,
    record: false,
    reset() {
      count = 0;
      texts.length = 0;
    },
    captureNext(match) {
      return new Promise((resolve) => waiting.push({ match, resolve }));
    },
    see(sql, params) {
      count += 1;
      if (this.record) texts.push(sql);
      if (waiting.length === 0) return;
      const hit = waiting.filter((w) => w.match(sql));
      if (hit.length === 0) return;
      waiting = waiting.filter((w) => !hit.includes(w));
      for (const w of hit) w.resolve({ sql, params: [...params] });
    },
  };
}

let pgTap: ReturnType<typeof makeTap> | undefined;

/** Patches pg.Client#query once per process (Pool#query goes through it too). */
function installPgTap(): SqlTap {
  if (pgTap) return pgTap;
  const tap = makeTap();
  const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const original = proto.query;
  proto.query = function tapped(this: unknown, ...args: unknown[]) {
    const [first, second] = args;
    if (typeof first === 'string') tap.see(first, Array.isArray(second) ? second : []);
    else if (first && typeof first === 'object' && 'text' in first) {
      const q = first as { text: string; values?: unknown[] };
      tap.see(q.text, q.values ?? (Array.isArray(second) ? second : []));
    }
    return original.apply(this, args);
  };
  pgTap = tap;
  return tap;
}

export interface BenchDatabase {
  db: Database;
  kind: 'postgres' | 'pglite';
  tap: SqlTap;
  /** Runs SQL with parameters on one connection/session (EXPLAIN, SET, bulk loads). */
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  server: { version: string; pgvector: string; sharedBuffers: string };
  close(): Promise<void>;
}

/**
 * `url` set: real Postgres through the project's pg pool (migrated on open). Unset: an
 * in-memory PGlite with pgvector (migrated on open), exactly like the embedded default.
 */
export async function openBenchDatabase(options: {
  url?: string;
  poolSize?: number;
}): Promise<BenchDatabase> {
  let db: Database;
  let tap: SqlTap;
  if (options.url) {
    tap = installPgTap();
    db = await openDatabase({
      url: options.url,
      poolSize: options.poolSize ?? 10,
      logger: silentLogger,
    });
  } else {
    const pglite = await PGlite.create({ extensions: { vector } });
    const t = makeTap();
    const original = pglite.query.bind(pglite);
    // The Prisma PGlite adapter calls `query` for every non-transactional statement.
    (pglite as unknown as { query: typeof pglite.query }).query = ((
      sql: string,
      params?: unknown[],
      opts?: unknown,
    ) => {
      t.see(sql, params ?? []);
      return original(sql, params, opts as never);
    }) as typeof pglite.query;
    tap = t;
    db = await openDatabase({ pglite, logger: silentLogger });
  }
  const query = <T>(sql: string, params?: unknown[]) => db.driver.query<T>(sql, params);
  const [v] = await query<{ version: string }>('SELECT version() AS version');
  const [e] = await query<{ extversion: string }>(
    "SELECT extversion FROM pg_extension WHERE extname = 'vector'",
  );
  // Recall latency at scale depends on it: pages not in it come from the OS or the disk.
  const [b] = await query<{ setting: string }>(
    "SELECT current_setting('shared_buffers') AS setting",
  );
  return {
    db,
    kind: db.kind,
    tap,
    query,
    server: {
      version: (v?.version ?? 'unknown').split(' ').slice(0, 2).join(' '),
      pgvector: e?.extversion ?? 'missing',
      sharedBuffers: b?.setting ?? 'unknown',
    },
    close: () => db.close(),
  };
}

/** Postgres URL from --database-url, then DATABASE_URL; undefined means embedded PGlite. */
export function databaseUrlFrom(flag: string | undefined): string | undefined {
  const url = flag ?? process.env.DATABASE_URL;
  if (url && !/^postgres(ql)?:\/\//.test(url)) {
    throw new Error(`--database-url / DATABASE_URL must be a postgres:// URL, got "${url}"`);
  }
  return url || undefined;
}

/**
 * EXPLAIN output of a captured statement, run with the same parameters, inside a transaction
 * that is rolled back (so `setup`, e.g. `SET LOCAL hnsw.ef_search = 100`, never leaks into
 * the pool).
 */
export async function explain(
  bench: BenchDatabase,
  q: CapturedQuery,
  options = 'ANALYZE, BUFFERS',
  setup: string[] = [],
): Promise<string> {
  return bench.db.withSession(async (s) => {
    await s.exec('BEGIN');
    try {
      for (const stmt of setup) await s.exec(stmt);
      const rows = await s.query<Record<string, string>>(`EXPLAIN (${options}) ${q.sql}`, q.params);
      return compactPlan(rows.map((r) => Object.values(r)[0]).join('\n'));
    } finally {
      await s.exec('ROLLBACK');
    }
  });
}

/**
 * A throwaway database on the server of `url` (needs CREATEDB), so a benchmark can drop and
 * rebuild indexes and load millions of rows without touching anyone's data. `drop` removes it.
 */
export async function createScratchDatabase(
  url: string,
  prefix: string,
): Promise<{ url: string; name: string; drop(): Promise<void> }> {
  const name = `${prefix}_${Math.random().toString(16).slice(2, 10)}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const scratch = new URL(url);
  scratch.pathname = `/${name}`;
  return {
    url: scratch.toString(),
    name,
    drop: async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** The same URL with server settings applied to every connection (`-c name=value`). */
export function withSettings(url: string, settings: Record<string, string>): string {
  const entries = Object.entries(settings);
  if (entries.length === 0) return url;
  const u = new URL(url);
  const existing = u.searchParams.get('options');
  const add = entries.map(([k, v]) => `-c ${k}=${v}`).join(' ');
  u.searchParams.set('options', existing ? `${existing} ${add}` : add);
  return u.toString();
}

/** Plan text without the 512 numbers of each vector literal. */
export function compactPlan(plan: string): string {
  return plan.replace(/'\[[-\d.e,]{40,}\]'/g, "'[…]'");
}

/** One line naming the access path of a plan: which index (if any) and whether it sorts. */
export function accessPath(plan: string): string {
  const parts: string[] = [];
  for (const line of plan.split('\n')) {
    const m = /(Index Scan|Index Only Scan|Bitmap Index Scan|Seq Scan)(?: using| on)? (\S+)/.exec(
      line,
    );
    if (m) parts.push(`${m[1]} ${m[2]}`);
  }
  const sorted = /Incremental Sort/.test(plan)
    ? ' + Incremental Sort'
    : /\bSort\b/.test(plan)
      ? ' + Sort'
      : '';
  return `${[...new Set(parts)].join(' / ') || '?'}${sorted}`;
}
