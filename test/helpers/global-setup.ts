import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { migrate, type SqlDriver } from '../../src/db/migrate.js';
import { silentLogger } from '../../src/logger.js';

declare module 'vitest' {
  export interface ProvidedContext {
    pgliteTemplate: string;
    postgresTemplate: string | null;
  }
}

export const POSTGRES_TEMPLATE_DB = 'companion_test_template';

/**
 * Migrates once per run: a PGlite data dir dumped to a file (each test file loads a clone in
 * ~0.5 s), and in the real-Postgres tier a template database each test file copies.
 */
export default async function setup(project: TestProject) {
  const dir = await mkdtemp(join(tmpdir(), 'companion-test-'));
  const pglite = await PGlite.create({ extensions: { vector } });
  const driver: SqlDriver = {
    query: async <T>(sql: string, params?: unknown[]) => (await pglite.query<T>(sql, params)).rows,
    exec: async (sql) => {
      await pglite.exec(sql);
    },
  };
  await migrate(driver, silentLogger);
  const dump = await pglite.dumpDataDir('none');
  const file = join(dir, 'template.tar');
  await writeFile(file, Buffer.from(await dump.arrayBuffer()));
  await pglite.close();
  project.provide('pgliteTemplate', file);

  const adminUrl = process.env.PG_ADMIN_URL;
  project.provide('postgresTemplate', adminUrl ? POSTGRES_TEMPLATE_DB : null);
  if (adminUrl) {
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${POSTGRES_TEMPLATE_DB} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${POSTGRES_TEMPLATE_DB}`);
    await admin.end();
    const url = new URL(adminUrl);
    url.pathname = `/${POSTGRES_TEMPLATE_DB}`;
    const client = new pg.Client({ connectionString: url.toString() });
    await client.connect();
    await migrate(
      {
        query: async <T>(sql: string, params?: unknown[]) =>
          (await client.query(sql, params)).rows as T[],
        exec: async (sql) => {
          await client.query(sql);
        },
      },
      silentLogger,
    );
    await client.end();
  }

  return async () => {
    await rm(dir, { recursive: true, force: true });
  };
}
