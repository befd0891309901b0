import { Prisma, type PrismaClient } from '@prisma/client';
import type { RawQuery } from '../db/raw.js';

/** Anything that can run a raw statement: the client or a transaction. */
type Db = Pick<PrismaClient, '$executeRaw'>;

/**
 * Ids known to have a users row, per database client (so every provisioner of one process and
 * the erasure in src/account/erase.ts share one view).
 */
const knownByClient = new WeakMap<object, Map<string, string | undefined>>();

function knownOf(prisma: object): Map<string, string | undefined> {
  let known = knownByClient.get(prisma);
  if (!known) {
    known = new Map();
    knownByClient.set(prisma, known);
  }
  return known;
}

/** Creates the users row of a token's subject if it is missing; idempotent. */
export async function ensureUser(db: Db, id: string): Promise<void> {
  await db.$executeRaw`INSERT INTO users (id) VALUES (${id}::uuid) ON CONFLICT DO NOTHING`;
}

/**
 * Users are provisioned on their first authenticated request. A bounded map of ids known to
 * exist (with the token's time zone last stored) saves the upsert on later requests; evicting
 * an id only costs one idempotent upsert. A token's `zoneinfo` claim is written through to the
 * user, so deployments whose identity provider knows the zone need no `updateViewer` call.
 *
 * The map can be stale: the row may be erased (by this process, which evicts the id through
 * forgetKnownUser, or by another machine or by hand). Nothing relies on it being exact:
 * startChat, where a user's rows begin, ensures the row itself, so a still-valid token of an
 * erased user simply starts over with a fresh, empty account.
 *
 * The statements go to the driver (`sql`, src/db/raw.ts), not through Prisma: this runs on the
 * first request of every user a process has not seen yet, so on a machine that just woke up it
 * is the first statement of any request, and through Prisma it started Prisma's query compiler
 * (loading and instantiating its WebAssembly, ~0.1 s of CPU) even for a turn that needs nothing
 * else from Prisma (BENCHMARKS.md §4). `prisma` only keys the shared map of known ids.
 */
export function createUserProvisioner(prisma: PrismaClient, sql: RawQuery, capacity = 10_000) {
  const known = knownOf(prisma);
  return async (viewer: { id: string; timeZone?: string }): Promise<void> => {
    const { id, timeZone } = viewer;
    if (known.has(id) && known.get(id) === timeZone) return;
    await sql(
      timeZone
        ? Prisma.sql`INSERT INTO users (id, time_zone) VALUES (${id}::uuid, ${timeZone})
            ON CONFLICT (id) DO UPDATE SET time_zone = EXCLUDED.time_zone
            WHERE users.time_zone IS DISTINCT FROM EXCLUDED.time_zone`
        : Prisma.sql`INSERT INTO users (id) VALUES (${id}::uuid) ON CONFLICT DO NOTHING`,
    );
    if (!known.has(id) && known.size >= capacity) {
      const oldest = known.keys().next().value;
      if (oldest !== undefined) known.delete(oldest);
    }
    known.set(id, timeZone);
  };
}

/** After an erasure: the next request of this id provisions its row again. */
export function forgetKnownUser(prisma: object, id: string): void {
  knownByClient.get(prisma)?.delete(id);
}
