import { Prisma } from '@prisma/client';
import type { Db } from '../memory/store.js';
import type { PriceTable } from './prices.js';
import { mergeEntries, type UsageEntry, type UsageKind, utcDay } from './types.js';

/**
 * The usage ledger: per user, UTC day, kind and model, the requests and tokens spent. Rows are
 * written by the work that spent them, in its own transaction (the turn's reply, the extraction
 * job's writes), so usage and work commit or roll back together.
 */

/**
 * One statement that adds `entries` to the user's rows of `at`'s UTC day. Usable on its own or
 * as a data-modifying CTE (`WITH usage AS (<this>) ...`) of a statement the work already makes.
 * A user who no longer exists (erased meanwhile) gets no row. Null when there is nothing to add.
 */
export function ledgerUpsertSql(
  userId: string,
  at: Date,
  entries: readonly UsageEntry[],
): Prisma.Sql | null {
  const merged = mergeEntries(entries);
  if (merged.length === 0) return null;
  const day = utcDay(at);
  const rows = merged.map(
    (e) =>
      Prisma.sql`(${e.kind}, ${e.model}, ${e.requests}::bigint, ${e.inputTokens}::bigint,
        ${e.outputTokens}::bigint, ${e.estimatedRequests}::bigint)`,
  );
  return Prisma.sql`
    INSERT INTO usage_ledger (user_id, day, kind, model, requests, input_tokens, output_tokens,
      estimated_requests, updated_at)
    SELECT u.id, ${day}::date, v.kind, v.model, v.requests, v.input_tokens, v.output_tokens,
      v.estimated_requests, now()
    FROM (VALUES ${Prisma.join(rows)})
      AS v(kind, model, requests, input_tokens, output_tokens, estimated_requests)
    JOIN users u ON u.id = ${userId}::uuid
    ON CONFLICT (user_id, day, kind, model) DO UPDATE SET
      requests = usage_ledger.requests + EXCLUDED.requests,
      input_tokens = usage_ledger.input_tokens + EXCLUDED.input_tokens,
      output_tokens = usage_ledger.output_tokens + EXCLUDED.output_tokens,
      estimated_requests = usage_ledger.estimated_requests + EXCLUDED.estimated_requests,
      updated_at = now()`;
}

/** Runs ledgerUpsertSql (nothing when there is nothing to add). */
export async function recordUsage(
  db: Db,
  userId: string,
  at: Date,
  entries: readonly UsageEntry[],
): Promise<void> {
  const sql = ledgerUpsertSql(userId, at, entries);
  if (sql) await db.$executeRaw(sql);
}

/** One ledger row: a day's added-up usage of one kind and model. */
export interface LedgerRow extends UsageEntry {
  day: string;
}

/** A user's rows from `fromDay` to `toDay` (YYYY-MM-DD, inclusive), newest day first. */
export async function readLedger(
  db: Db,
  userId: string,
  fromDay: string,
  toDay: string,
  kinds?: readonly UsageKind[],
): Promise<LedgerRow[]> {
  const kindFilter = kinds ? Prisma.sql`AND kind IN (${Prisma.join(kinds)})` : Prisma.empty;
  const rows = await db.$queryRaw<
    {
      day: string;
      kind: UsageKind;
      model: string;
      requests: bigint;
      input_tokens: bigint;
      output_tokens: bigint;
      estimated_requests: bigint;
    }[]
  >`
    SELECT to_char(day, 'YYYY-MM-DD') AS day, kind, model, requests, input_tokens, output_tokens,
      estimated_requests
    FROM usage_ledger
    WHERE user_id = ${userId}::uuid AND day BETWEEN ${fromDay}::date AND ${toDay}::date ${kindFilter}
    ORDER BY day DESC, kind, model`;
  return rows.map((r) => ({
    day: r.day,
    kind: r.kind,
    model: r.model,
    requests: Number(r.requests),
    inputTokens: Number(r.input_tokens),
    outputTokens: Number(r.output_tokens),
    estimatedRequests: Number(r.estimated_requests),
  }));
}

export interface UserCost {
  userId: string;
  /** USD of the priced models; null when none of the user's usage has a price. */
  costUsd: number | null;
  /** Tokens (input + output) of models without a price: not in costUsd. */
  unpricedTokens: number;
  requests: number;
  inputTokens: number;
  outputTokens: number;
}

/**
 * Users ranked by estimated cost over `fromDay`..`toDay` (most expensive first; ties and users
 * without priced usage by tokens, then id), one page of `limit` from `offset`. The prices go in
 * as a VALUES list, so the ranking is one aggregate over the window's rows (index on day).
 */
export async function topUsersByCost(
  db: Db,
  prices: PriceTable,
  window: { fromDay: string; toDay: string },
  page: { limit: number; offset: number },
): Promise<UserCost[]> {
  const priceRows = [...prices].map(
    ([model, p]) => Prisma.sql`(${model}, ${p.input}::float8, ${p.output}::float8)`,
  );
  // An empty VALUES list is not SQL: a row no model has stands in.
  if (priceRows.length === 0) priceRows.push(Prisma.sql`(NULL::text, 0::float8, 0::float8)`);
  const rows = await db.$queryRaw<
    {
      user_id: string;
      cost: number | null;
      unpriced: bigint;
      requests: bigint;
      input_tokens: bigint;
      output_tokens: bigint;
    }[]
  >`
    SELECT l.user_id::text AS user_id,
      sum((l.input_tokens * p.input + l.output_tokens * p.output) / 1e6)::float8 AS cost,
      coalesce(sum(l.input_tokens + l.output_tokens) FILTER (WHERE p.model IS NULL), 0)::bigint
        AS unpriced,
      sum(l.requests)::bigint AS requests, sum(l.input_tokens)::bigint AS input_tokens,
      sum(l.output_tokens)::bigint AS output_tokens
    FROM usage_ledger l
    LEFT JOIN (VALUES ${Prisma.join(priceRows)}) AS p(model, input, output) ON p.model = l.model
    WHERE l.day BETWEEN ${window.fromDay}::date AND ${window.toDay}::date
    GROUP BY l.user_id
    ORDER BY cost DESC NULLS LAST, sum(l.input_tokens + l.output_tokens) DESC, l.user_id
    LIMIT ${page.limit} OFFSET ${page.offset}`;
  return rows.map((r) => ({
    userId: r.user_id,
    costUsd: r.cost === null ? null : Number(r.cost),
    unpricedTokens: Number(r.unpriced),
    requests: Number(r.requests),
    inputTokens: Number(r.input_tokens),
    outputTokens: Number(r.output_tokens),
  }));
}

/**
 * Deletes up to `batch` rows older than `retentionDays` UTC days (oldest first), so the ledger
 * does not grow with time alone; returns how many. The worker's housekeeping calls it.
 */
export async function pruneLedger(
  db: Db,
  now: Date,
  retentionDays: number,
  batch = 500,
): Promise<number> {
  const before = utcDay(new Date(now.getTime() - retentionDays * 86_400_000));
  return db.$executeRaw`
    DELETE FROM usage_ledger WHERE (user_id, day, kind, model) IN (
      SELECT user_id, day, kind, model FROM usage_ledger
      WHERE day < ${before}::date ORDER BY day LIMIT ${batch})`;
}
