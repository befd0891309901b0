import { createHash, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../logger.js';

/**
 * Applies prisma/migrations/<name>/migration.sql in order and records them in Prisma's own
 * `_prisma_migrations` format, so `prisma migrate status` and this runner agree.
 *
 * Why not `prisma migrate deploy`: with Prisma 6.19 it needs the native schema engine (a
 * download this project cannot make) or the experimental WASM engine path, which breaks on
 * pgvector catalogs (PLATFORM.md). This runner is the one path for embedded PGlite, tests,
 * real Postgres and the Fly release command.
 */
export interface SqlDriver {
  /** One statement; `name` makes it a named prepared statement where the driver has them. */
  query<T = Record<string, unknown>>(sql: string, params?: unknown[], name?: string): Promise<T[]>;
  /** Runs a script of several statements. */
  exec(sql: string): Promise<void>;
}

const MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
  "id" VARCHAR(36) PRIMARY KEY NOT NULL,
  "checksum" VARCHAR(64) NOT NULL,
  "finished_at" TIMESTAMPTZ,
  "migration_name" VARCHAR(255) NOT NULL,
  "logs" TEXT,
  "rolled_back_at" TIMESTAMPTZ,
  "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
  "applied_steps_count" INTEGER NOT NULL DEFAULT 0
)`;

/** Arbitrary constant: serialises concurrent migrators (several machines starting at once). */
const LOCK_KEY = 72_707_369;

export function findMigrationsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'prisma', 'migrations');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new Error('prisma/migrations not found above the server code');
}

interface Migration {
  name: string;
  sql: string;
  checksum: string;
}

async function loadMigrations(dir: string): Promise<Migration[]> {
  const names = (await readdir(dir, { withFileTypes: true }))
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
  return Promise.all(
    names.map(async (name) => {
      const sql = await readFile(join(dir, name, 'migration.sql'), 'utf8');
      return { name, sql, checksum: createHash('sha256').update(sql).digest('hex') };
    }),
  );
}

/** Returns the names of the migrations it applied (empty when up to date). */
export async function migrate(
  driver: SqlDriver,
  logger: Logger,
  dir = findMigrationsDir(),
): Promise<string[]> {
  const migrations = await loadMigrations(dir);
  await driver.query('SELECT pg_advisory_lock($1)', [LOCK_KEY]);
  try {
    await driver.exec(MIGRATIONS_TABLE);
    const rows = await driver.query<{ migration_name: string; checksum: string }>(
      `SELECT migration_name, checksum FROM "_prisma_migrations"
       WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`,
    );
    const applied = new Map(rows.map((r) => [r.migration_name, r.checksum]));
    const done: string[] = [];
    for (const m of migrations) {
      const checksum = applied.get(m.name);
      if (checksum !== undefined) {
        if (checksum !== m.checksum) {
          logger.warn({ migration: m.name }, 'applied migration was edited after it ran');
        }
        continue;
      }
      const id = randomUUID();
      await driver.exec('BEGIN');
      try {
        await driver.exec(m.sql);
        await driver.query(
          `INSERT INTO "_prisma_migrations"
             (id, checksum, migration_name, started_at, finished_at, applied_steps_count)
           VALUES ($1, $2, $3, now(), now(), 1)`,
          [id, m.checksum, m.name],
        );
        await driver.exec('COMMIT');
      } catch (err) {
        await driver.exec('ROLLBACK');
        throw new Error(`migration ${m.name} failed: ${(err as Error).message}`, { cause: err });
      }
      logger.info({ migration: m.name }, 'migration applied');
      done.push(m.name);
    }
    return done;
  } finally {
    await driver.query('SELECT pg_advisory_unlock($1)', [LOCK_KEY]);
  }
}
