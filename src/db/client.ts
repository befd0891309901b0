import { mkdir } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '@prisma/client';
import pg from 'pg';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import type { Logger } from '../logger.js';
import { migrate, type SqlDriver } from './migrate.js';

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
  close(): Promise<void>;
}

export type DatabaseOptions =
  | { url: string; poolSize: number; logger: Logger; migrate?: boolean }
  | { dataDir: string; logger: Logger; migrate?: boolean }
  /** An already-open PGlite (tests load a migrated template into one). */
  | { pglite: PGlite; logger: Logger; migrate?: boolean };

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

function driverOf(client: pg.Pool | pg.PoolClient): SqlDriver {
  return {
    query: async <T>(sql: string, params?: unknown[]) =>
      (await client.query(sql, params)).rows as T[],
    exec: async (sql) => {
      await client.query(sql);
    },
  };
}

function openPostgres(options: { url: string; poolSize: number }): Database {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 10_000,
  });
  // An idle client's error (e.g. the server restarted) must not crash the process; the pool
  // drops that client and the next query reconnects.
  pool.on('error', () => {});
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
  return {
    prisma,
    kind: 'postgres',
    driver: driverOf(pool),
    withSession: async (fn) => {
      const client = await pool.connect();
      try {
        return await fn(driverOf(client));
      } finally {
        client.release();
      }
    },
    close: async () => {
      await prisma.$disconnect();
      await pool.end();
    },
  };
}

async function openPglite(options: { dataDir: string } | { pglite: PGlite }): Promise<Database> {
  let pglite: PGlite;
  if ('pglite' in options) {
    pglite = options.pglite;
  } else {
    await mkdir(options.dataDir, { recursive: true });
    pglite = await PGlite.create(options.dataDir, { extensions: { vector } });
  }
  const driver: SqlDriver = {
    query: async <T>(sql: string, params?: unknown[]) => (await pglite.query<T>(sql, params)).rows,
    exec: async (sql) => {
      await pglite.exec(sql);
    },
  };
  // pglite-prisma-adapter 0.6 is typed against driver-adapter-utils 6.10; the runtime contract
  // it implements is the one Prisma 6.19 calls (checked by the test suite), only the types lag.
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
    },
  };
}
