import { createHash } from 'node:crypto';
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
export type RawQuery = (query: Prisma.Sql, options?: RawQueryOptions) => Promise<unknown[]>;

export interface RawQueryOptions {
  /**
   * Run it as a named prepared statement: each connection parses and plans it once, then (from
   * PostgreSQL's sixth execution on, if its generic plan costs no more than the custom ones)
   * only binds and executes it. Only for statements whose text takes a handful of shapes and
   * whose best plan does not depend on the values bound (a plan cached for one user serves all:
   * see recall's layer paths, src/memory/store.ts). The name is a hash of the text, so a
   * connection holds one prepared statement per shape. Drivers without them (PGlite) ignore it.
   */
  prepare?: boolean;
}

/**
 * Names already computed, by statement text: hashing a recall statement's ~10 KB of text was
 * ~1.5 % of a turn's server CPU, where a Map lookup hashes the string natively once. Bounded:
 * prepared statements come in a handful of shapes; past the bound a name is computed each time.
 */
const NAMES_KEPT = 256;
const names = new Map<string, string>();

/** A prepared statement's name: its text's hash (under PostgreSQL's 63-byte name limit). */
export function statementName(text: string): string {
  let name = names.get(text);
  if (name === undefined) {
    name = `q_${createHash('sha1').update(text).digest('base64url')}`;
    if (names.size < NAMES_KEPT) names.set(text, name);
  }
  return name;
}

/**
 * On the database's pooled driver (no session state between calls). `prepared: false`
 * (DATABASE_PREPARED_STATEMENTS) runs every statement unnamed, as a pooler in transaction mode
 * that does not track prepared statements requires (the next statement may reach another
 * server connection, where the name is unknown).
 */
export function rawQueryOf(driver: SqlDriver, options: { prepared?: boolean } = {}): RawQuery {
  const prepared = options.prepared ?? true;
  return (query, run) =>
    driver.query<unknown>(
      query.text,
      query.values,
      prepared && run?.prepare ? statementName(query.text) : undefined,
    );
}

/** Through Prisma (`$queryRaw`), e.g. for a client wrapped by a test (never prepared). */
export function rawQueryViaPrisma(prisma: Pick<PrismaClient, '$queryRaw'>): RawQuery {
  return (query) => prisma.$queryRaw<unknown[]>(query);
}
