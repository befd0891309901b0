import { Prisma, type PrismaClient } from '@prisma/client';
import { forgetKnownUser } from '../auth/users.js';
import type { Db } from '../memory/store.js';

/**
 * Account erasure (App Store account deletion, GDPR art. 17): every row of one user, in one
 * transaction, with a receipt that counts what went.
 *
 * The tables are listed children first, so each count is what that table really held (the
 * foreign keys cascade from users, and deleting the parent first would hide the children in
 * the cascade). A new table with a user_id column is one more line here. One that is missing
 * from the list is still erased: before the listed ones, every other public table with a
 * user_id column is swept (and counted under its own name), so a table added by a later
 * migration can never keep a trace of an erased user.
 */
const USER_TABLES = [
  'messages',
  'chat_sessions',
  'memories',
  'memory_history', // not a foreign key: history outlives a memory, not its user
  'persona_instances',
  'jobs', // queued and finished extraction of the user's turns
] as const;

export interface ErasureReceipt {
  userId: string;
  erasedAt: Date;
  /** Rows deleted per table (zero counts included), the users row last. */
  deleted: { kind: string; count: number }[];
}

/** A heavy user: tens of thousands of memories and messages. */
const ERASE_TIMEOUT = { timeout: 120_000 };

/**
 * Erases a user. Idempotent: erasing a user with no rows answers a receipt of zeros.
 *
 * Extraction jobs of the user cannot write afterwards: this transaction takes the per-user
 * advisory lock every memory writer takes (extract-job.ts, memory/manage.ts), and a job's
 * write transaction, once it holds the lock, checks that its turn's message still exists, so
 * a job that was mid-run ends without writing (and its queue row is gone with the rest).
 */
export async function eraseUser(prisma: PrismaClient, userId: string): Promise<ErasureReceipt> {
  const receipt = await prisma.$transaction(async (tx) => {
    await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended(${userId}, 0))`;
    const deleted: ErasureReceipt['deleted'] = [];
    for (const table of [...(await unlistedUserTables(tx)), ...USER_TABLES]) {
      const count = await tx.$executeRaw`
        DELETE FROM ${Prisma.raw(quoteIdent(table))} WHERE user_id = ${userId}::uuid`;
      deleted.push({ kind: table, count });
    }
    const users = await tx.$executeRaw`DELETE FROM users WHERE id = ${userId}::uuid`;
    deleted.push({ kind: 'users', count: users });
    return { userId, erasedAt: new Date(), deleted };
  }, ERASE_TIMEOUT);
  forgetKnownUser(prisma, userId);
  return receipt;
}

/** Public tables with a user_id column that USER_TABLES does not name (names from the catalog). */
async function unlistedUserTables(tx: Db): Promise<string[]> {
  const rows = await tx.$queryRaw<{ table_name: string }[]>`
    SELECT c.table_name::text AS table_name FROM information_schema.columns c
    JOIN information_schema.tables t
      ON t.table_schema = c.table_schema AND t.table_name = c.table_name
    WHERE c.table_schema = 'public' AND c.column_name = 'user_id'
      AND t.table_type = 'BASE TABLE'
    ORDER BY c.table_name`;
  const listed = new Set<string>([...USER_TABLES, 'users']);
  return rows.map((r) => r.table_name).filter((name) => !listed.has(name));
}

/** Table names come from the code or the catalog, never from a client; quoted all the same. */
function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
