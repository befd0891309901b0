import { Prisma, type PrismaClient } from '@prisma/client';
import { type RawQuery, rawQueryViaPrisma } from './db/raw.js';

/** The per-user limits whose state is shared across processes. */
export type LimitKind = 'turns' | 'starts' | 'embeds';

/** Where token buckets live: Postgres in the server, memory in unit tests of the primitives. */
export interface RateStore {
  /**
   * Takes one token from `userId`'s `kind` bucket (`perMinute` tokens of burst, refilled evenly
   * over a minute). Returns 0 when admitted, else the milliseconds until a token is available.
   */
  take(userId: string, kind: LimitKind, perMinute: number): Promise<number>;
}

/** A bucket untouched this long is full again (it refills completely in a minute): prunable. */
const FULL_AFTER_SECONDS = 61;

/**
 * Token buckets in the `rate_limits` table, so a limit holds across every server process and
 * machine on one database (`fly deploy` starts two by default). One statement per take: an
 * upsert that refills by the time elapsed, takes a token if there is one and returns the
 * verdict. The row lock of ON CONFLICT DO UPDATE serialises concurrent takes of one bucket,
 * from any process. Works the same on PGlite (one process) as on Postgres.
 *
 * Why not an in-memory limiter per process: with N machines a user would get N× the documented
 * rate. Why not Redis: this project's point is one Postgres and nothing else.
 */
export class PostgresRateStore implements RateStore {
  readonly #query: RawQuery;

  /** On a RawQuery (the server: one statement per turn, without Prisma's engine) or a client. */
  constructor(db: RawQuery | PrismaClient) {
    this.#query = typeof db === 'function' ? db : rawQueryViaPrisma(db);
  }

  async take(userId: string, kind: LimitKind, perMinute: number): Promise<number> {
    const perSecond = perMinute / 60;
    const [row] = (await this.#query(
      Prisma.sql`
      INSERT INTO rate_limits AS r (user_id, kind, tokens, admitted, updated_at)
      VALUES (${userId}::uuid, ${kind}, ${perMinute - 1}::float8, true, now())
      ON CONFLICT (user_id, kind) DO UPDATE SET
        tokens = CASE
          WHEN LEAST(${perMinute}::float8, r.tokens
            + GREATEST(0, EXTRACT(EPOCH FROM now() - r.updated_at)::float8) * ${perSecond}::float8) >= 1
          THEN LEAST(${perMinute}::float8, r.tokens
            + GREATEST(0, EXTRACT(EPOCH FROM now() - r.updated_at)::float8) * ${perSecond}::float8) - 1
          ELSE LEAST(${perMinute}::float8, r.tokens
            + GREATEST(0, EXTRACT(EPOCH FROM now() - r.updated_at)::float8) * ${perSecond}::float8)
        END,
        admitted = LEAST(${perMinute}::float8, r.tokens
          + GREATEST(0, EXTRACT(EPOCH FROM now() - r.updated_at)::float8) * ${perSecond}::float8) >= 1,
        updated_at = GREATEST(r.updated_at, now())
      RETURNING admitted, tokens`,
      // One text for every user and kind: planned once per connection (src/db/raw.ts).
      { prepare: true },
    )) as ({ admitted: boolean; tokens: number } | undefined)[];
    if (!row || row.admitted) return 0;
    return Math.ceil(((1 - Number(row.tokens)) / perSecond) * 1000);
  }
}

/** Deletes buckets that have refilled completely (a missing row reads as a full bucket). */
export async function pruneRateLimits(prisma: PrismaClient): Promise<number> {
  return prisma.$executeRaw`
    DELETE FROM rate_limits WHERE (user_id, kind) IN (
      SELECT user_id, kind FROM rate_limits
      WHERE updated_at < now() - make_interval(secs => ${FULL_AFTER_SECONDS})
      LIMIT 10000)`;
}
