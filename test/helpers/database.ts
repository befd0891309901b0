import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import pg from 'pg';
import { inject } from 'vitest';
import { type Database, openDatabase } from '../../src/db/client.js';
import { silentLogger } from '../../src/logger.js';

/** Which database tier this run tests: PG_ADMIN_URL set (by scripts/ci/with-postgres.sh) → real Postgres. */
export const tier: 'postgres' | 'pglite' = inject('postgresTemplate') ? 'postgres' : 'pglite';

export interface TestDatabase {
  db: Database;
  /** postgres:// URL of this test's database (real-Postgres tier only), for child processes. */
  url: string | null;
  close(): Promise<void>;
}

/** A fresh, migrated database for one test file: a PGlite clone or a Postgres copy of the template. */
export async function openTestDatabase(): Promise<TestDatabase> {
  const template = inject('postgresTemplate');
  const adminUrl = process.env.PG_ADMIN_URL;
  if (template && adminUrl) {
    const name = `companion_test_${randomBytes(6).toString('hex')}`;
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name} TEMPLATE ${template}`);
    await admin.end();
    const url = new URL(adminUrl);
    url.pathname = `/${name}`;
    const db = await openDatabase({
      url: url.toString(),
      poolSize: 5,
      logger: silentLogger,
      migrate: false,
    });
    return {
      db,
      url: url.toString(),
      close: async () => {
        await db.close();
        const drop = new pg.Client({ connectionString: adminUrl });
        await drop.connect();
        await drop.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await drop.end();
      },
    };
  }
  const blob = new Blob([await readFile(inject('pgliteTemplate'))]);
  const pglite = await PGlite.create({ loadDataDir: blob, extensions: { vector } });
  const db = await openDatabase({ pglite, logger: silentLogger, migrate: false });
  return { db, url: null, close: () => db.close() };
}
