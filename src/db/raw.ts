import type { Prisma, PrismaClient } from '@prisma/client';
import type { SqlDriver } from './migrate.js';

/**
 * Runs one parameterised statement (a `Prisma.sql` tagged template) and returns its rows.
 *
 * The chat turn's statements (src/chat/turn-store.ts, the rate limit in src/limits-store.ts)
 * go straight to the driver (pg's pool, or PGlite) with the template's `$n` text and values:
 * through `$queryRaw`, Prisma 6's client engine compiles even a raw statement in its WebAssembly
 * query compiler and wraps it in its request pipeline, which cost ~0.8 ms of CPU per statement
 * (a sixth of a turn's server CPU at 5 statements). Everything else keeps Prisma. The SQL is the
 * same parameterised template either way; only the results differ: rows come back as the
 * driver decodes them (json/jsonb parsed, timestamptz as Date), so callers check them (zod).
 * On PGlite a direct query waits for any open Prisma transaction (PGlite serialises them).
 */
export type RawQuery = (query: Prisma.Sql) => Promise<unknown[]>;

/** On the database's pooled driver (no session state between calls). */
export function rawQueryOf(driver: SqlDriver): RawQuery {
  return (query) => driver.query<unknown>(query.text, query.values);
}

/** Through Prisma (`$queryRaw`), e.g. for a client wrapped by a test. */
export function rawQueryViaPrisma(prisma: Pick<PrismaClient, '$queryRaw'>): RawQuery {
  return (query) => prisma.$queryRaw<unknown[]>(query);
}
