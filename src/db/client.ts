import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { PGlite } from '@electric-sql/pglite';
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '@prisma/client';
import pg from 'pg';
import type { Logger } from '../logger.js';
import { importZeroConfig } from '../optional-deps.js';
import { lockDataDir } from './lock.js';
import { migrate, type SqlDriver } from './migrate.js';
import { initDataDirApart, loadPgliteArtifacts } from './pglite-initdb.js';
import { type SessionSettings, sessionSettingsOptions, sessionSettingsSql } from './settings.js';

export type { PrismaClient };

type AdapterFactory = NonNullable<
  NonNullable<ConstructorParameters<typeof PrismaClient>[0]>['adapter']
>;

export interface Database {
  prisma: PrismaClient;
  kind: 'postgres' | 'pglite';
  /** Raw driver access (health checks, tools). Pooled: no session state between calls. */
  driver: SqlDriver;
  /** One connection for work that needs a session (BEGIN/COMMIT, advisory locks). */
  withSession<T>(fn: (session: SqlDriver) => Promise<T>): Promise<T>;
  /**
   * Real Postgres only: a dedicated connection (outside the pool) that LISTENs on `channel`.
   * `onEnd` is called once when that connection is lost; the caller reconnects.
   */
  listen?(
    channel: string,
    onPayload: (payload: string) => void,
    onEnd: (err?: Error) => void,
  ): Promise<{ close(): Promise<void> }>;
  close(): Promise<void>;
}

interface CommonOptions {
  logger: Logger;
  migrate?: boolean;
  /** Session settings of every connection (./settings.ts). */
  session?: SessionSettings;
}

export type DatabaseOptions =
  | ({ url: string; poolSize: number } & CommonOptions)
  | ({ dataDir: string } & CommonOptions)
  /** An already-open PGlite (tests load a migrated template into one). */
  | ({ pglite: PGlite } & CommonOptions);

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  const db = 'url' in options ? openPostgres(options) : await openPglite(options);
  if (options.migrate !== false) {
    try {
      await db.withSession((session) => migrate(session, options.logger));
    } catch (err) {
      await db.close();
      throw err;
    }
  }
  return db;
}

/**
 * `url` with `-c name=value` start-up options put before its own `options` parameter (pg lets a
 * URL's parameters override the pool's, so they are merged here rather than passed apart).
 */
export function withStartupOptions(url: string, options: string): string {
  if (!options) return url;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return url; // not a URL pg would read as one either; leave it for pg to report
  }
  const own = parsed.searchParams.get('options');
  parsed.searchParams.set('options', own ? `${options} ${own}` : options);
  return parsed.toString();
}

function driverOf(client: pg.Pool | pg.PoolClient): SqlDriver {
  return {
    query: async <T>(sql: string, params?: unknown[], name?: string) =>
      (name === undefined
        ? await client.query(sql, params)
        : await client.query({ name, text: sql, values: params })
      ).rows as T[],
    exec: async (sql) => {
      await client.query(sql);
    },
  };
}

/*
 * Surviving a database restart (test/db-restart.test.ts restarts Postgres under load). Three
 * things go wrong without the measures below; each was seen in that test:
 *
 * 1. A crash. node-postgres emits 'error' on a client whose server goes away; with no listener
 *    that is an uncaught exception and the process dies. The pool listens on idle clients only,
 *    and a checked-out client gets its listener from whoever holds it, a few microtasks after
 *    checkout: a fast shutdown's "terminating connection" (57P01) landing on a client between
 *    two holders killed the test process. So every client gets a listener of its own for life
 *    ('connect' below). The error is not lost: the client is marked unusable, the query in
 *    flight fails, and the pool drops the client when it is released.
 * 2. A connection leak. Prisma's transaction manager releases a transaction's connection only
 *    after its COMMIT or ROLLBACK succeeded; when that statement fails (the server is gone), the
 *    connection stays checked out for ever. Each restart took a few pool slots away; enough of
 *    them and every request waits out connectionTimeoutMillis, and pool.end() (shutdown) hangs.
 *    releaseFailedTransactions() hands such a connection back, and the pool discards it.
 * 3. Silent half-open connections (failover, a vanished host: no FIN/RST ever arrives): TCP
 *    keepalive lets the kernel notice them on idle clients within ~a minute instead of hours.
 *
 * A restart itself needs nothing else: the pool opens new connections on demand, requests during
 * the outage fail fast (ECONNREFUSED / 57P03) and requests after it succeed, with no restart of
 * the app. isDatabaseUnavailable() (./unavailable.ts) tells those outage errors apart for callers that map them.
 */
function openPostgres(options: {
  url: string;
  poolSize: number;
  logger: Logger;
  session?: SessionSettings;
}): Database {
  const pool = new pg.Pool({
    // The session settings travel in the connection's start-up packet, so they hold before its
    // first query; the URL's own `options` come after them and win.
    connectionString: withStartupOptions(options.url, sessionSettingsOptions(options.session)),
    max: options.poolSize,
    idleTimeoutMillis: 30_000,
    // Bounds both opening a connection and waiting for a free one: a request fails, not hangs.
    connectionTimeoutMillis: 10_000,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  });
  const log = options.logger.child({ component: 'pg-pool' });
  // An idle client's error (e.g. the server restarted): the pool has already dropped it, and
  // the next query opens a new connection.
  pool.on('error', (err) => log.warn({ err: err.message }, 'idle database connection lost'));
  pool.on('connect', (client) => {
    client.on('error', (err) => log.debug({ err: err.message }, 'database connection lost'));
  });
  const adapter = releaseFailedTransactions(new PrismaPg(pool));
  const prisma = new PrismaClient({ adapter });
  return {
    prisma,
    kind: 'postgres',
    driver: driverOf(pool),
    withSession: async (fn) => {
      const client = await pool.connect();
      let failure: Error | undefined;
      try {
        return await fn(driverOf(client));
      } catch (err) {
        failure = err instanceof Error ? err : new Error(String(err));
        throw err;
      } finally {
        // After a failure the session's state is unknown (an open transaction, a held advisory
        // lock): discard the connection instead of pooling it.
        client.release(failure);
      }
    },
    listen: async (channel, onPayload, onEnd) => {
      const client = new pg.Client({
        connectionString: options.url,
        keepAlive: true,
        keepAliveInitialDelayMillis: 10_000,
        connectionTimeoutMillis: 10_000,
      });
      let ended = false;
      const end = (err?: Error) => {
        if (ended) return;
        ended = true;
        onEnd(err);
      };
      client.on('error', (err) => end(err));
      client.on('end', () => end());
      client.on('notification', (n) => {
        if (n.channel === channel && n.payload) onPayload(n.payload);
      });
      try {
        await client.connect();
        await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
      } catch (err) {
        ended = true;
        await client.end().catch(() => {});
        throw err;
      }
      return {
        close: async () => {
          ended = true;
          await client.end().catch(() => {});
        },
      };
    },
    close: async () => {
      await prisma.$disconnect();
      await pool.end();
    },
  };
}

type PgAdapter = Awaited<ReturnType<PrismaPg['connect']>>;
type PgTransaction = Awaited<ReturnType<PgAdapter['startTransaction']>>;

/**
 * Prisma 6.19's transaction manager (client engine) ends a transaction with
 * `executeRaw('COMMIT' | 'ROLLBACK')` and only then calls `commit()`/`rollback()`, which is
 * what releases the pg connection (adapter-pg). If that statement throws, the release never
 * happens. Here a failed COMMIT/ROLLBACK releases it at once; pg-pool discards a connection
 * that has seen a connection error, and a live one is clean (a failed COMMIT has ended the
 * transaction). The later commit()/rollback(), if Prisma still makes the call, is a no-op.
 */
function releaseFailedTransactions(factory: PrismaPg): PrismaPg {
  const connect = factory.connect.bind(factory);
  factory.connect = async () => {
    const adapter = await connect();
    const startTransaction = adapter.startTransaction.bind(adapter);
    adapter.startTransaction = async (isolationLevel) =>
      releaseOnFailedEnd(await startTransaction(isolationLevel));
    return adapter;
  };
  return factory;
}

function releaseOnFailedEnd(tx: PgTransaction): PgTransaction {
  let released = false;
  const release = (end: () => Promise<void>) => async () => {
    if (released) return;
    released = true;
    await end();
  };
  const executeRaw = tx.executeRaw.bind(tx);
  const rollback = release(tx.rollback.bind(tx));
  tx.commit = release(tx.commit.bind(tx));
  tx.rollback = rollback;
  tx.executeRaw = async (query) => {
    try {
      return await executeRaw(query);
    } catch (err) {
      if (query.sql === 'COMMIT' || query.sql === 'ROLLBACK') await rollback();
      throw err;
    }
  };
  return tx;
}

async function openPglite(
  options: ({ dataDir: string } | { pglite: PGlite }) & { session?: SessionSettings },
): Promise<Database> {
  let pglite: PGlite;
  let unlock = async () => {};
  if ('pglite' in options) {
    pglite = options.pglite;
  } else {
    await mkdir(options.dataDir, { recursive: true });
    unlock = await lockDataDir(options.dataDir);
    try {
      const [{ PGlite }, { vector }] = await Promise.all([
        importZeroConfig(() => import('@electric-sql/pglite')),
        importZeroConfig(() => import('@electric-sql/pglite-pgvector')),
      ]);
      // PGlite touches all of shared_buffers at start (its default, 128 MB, was ~110 MiB of
      // the zero-config RSS); a development database is small, and reads the data dir
      // through the OS cache anyway (BENCHMARKS.md §4).
      const startParams = [...PGlite.defaultStartParams, '-c', 'shared_buffers=16MB'];
      // A new data directory is initialised in a child process (./pglite-initdb.ts: initdb's
      // memory is never all returned by the process that ran it); meanwhile this process loads
      // and compiles the PGlite build it opens the directory with next.
      const fresh = !existsSync(join(options.dataDir, 'PG_VERSION'));
      const artifacts = fresh ? loadPgliteArtifacts() : undefined;
      await initDataDirApart(options.dataDir, startParams);
      pglite = await PGlite.create(options.dataDir, {
        extensions: { vector },
        startParams,
        ...(await artifacts),
      });
    } catch (err) {
      await unlock();
      throw err;
    }
  }
  // PGlite is one session: set once.
  await pglite.exec(sessionSettingsSql(options.session));
  const driver: SqlDriver = {
    query: async <T>(sql: string, params?: unknown[]) => (await pglite.query<T>(sql, params)).rows,
    exec: async (sql) => {
      await pglite.exec(sql);
    },
  };
  // pglite-prisma-adapter 0.6 is typed against driver-adapter-utils 6.10; the runtime contract
  // it implements is the one Prisma 6.19 calls (checked by the test suite), only the types lag.
  const { PrismaPGlite } = await importZeroConfig(() => import('pglite-prisma-adapter'));
  const adapter = new PrismaPGlite(pglite) as unknown as AdapterFactory;
  const prisma = new PrismaClient({ adapter });
  return {
    prisma,
    kind: 'pglite',
    driver,
    // PGlite is a single session already.
    withSession: (fn) => fn(driver),
    close: async () => {
      await prisma.$disconnect();
      if (!pglite.closed) await pglite.close();
      await unlock();
    },
  };
}
