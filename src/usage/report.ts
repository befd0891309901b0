import type { Db } from '../memory/store.js';
import { type Budget, budgetState, type UsagePolicy } from './budgets.js';
import { type LedgerRow, readLedger } from './ledger.js';
import { costOf, type PriceTable } from './prices.js';
import { USAGE_KINDS, type UsageKind, utcDay } from './types.js';

/** Days a usage report covers, today included. */
export const REPORT_DAYS = 30;

interface Counts {
  requests: number;
  inputTokens: number;
  outputTokens: number;
  estimatedRequests: number;
  /** USD of the priced models; null when some tokens are of a model without a price. */
  costUsd: number | null;
  /** Tokens of models without a price (not in costUsd). */
  unpricedTokens: number;
}

export interface ModelUsage extends Counts {
  model: string;
}
export interface KindUsage extends Counts {
  kind: UsageKind;
  models: ModelUsage[];
}
export interface DayUsage extends Counts {
  day: string;
  kinds: KindUsage[];
}
export interface BudgetReport {
  limit: Budget;
  tokensUsed: number;
  costUsedUsd: number;
  exceeded: boolean;
  resetsAt: Date;
}
export interface UsageReport {
  today: DayUsage;
  /** Days with usage among the last REPORT_DAYS (today included), newest first. */
  days: DayUsage[];
  chatBudget: BudgetReport | null;
  memoryBudget: BudgetReport | null;
}

const zero = (): Counts => ({
  requests: 0,
  inputTokens: 0,
  outputTokens: 0,
  estimatedRequests: 0,
  costUsd: 0,
  unpricedTokens: 0,
});

function add(into: Counts, c: Counts): void {
  into.requests += c.requests;
  into.inputTokens += c.inputTokens;
  into.outputTokens += c.outputTokens;
  into.estimatedRequests += c.estimatedRequests;
  into.unpricedTokens += c.unpricedTokens;
  into.costUsd = into.costUsd === null || c.costUsd === null ? null : into.costUsd + c.costUsd;
}

function modelUsage(prices: PriceTable, r: LedgerRow): ModelUsage {
  const cost = costOf(prices, r.model, r.inputTokens, r.outputTokens);
  const tokens = r.inputTokens + r.outputTokens;
  return {
    model: r.model,
    requests: r.requests,
    inputTokens: r.inputTokens,
    outputTokens: r.outputTokens,
    estimatedRequests: r.estimatedRequests,
    // An unpriced model with no tokens (e.g. a failed call) costs nothing, knowably.
    costUsd: cost ?? (tokens === 0 ? 0 : null),
    unpricedTokens: cost === null ? tokens : 0,
  };
}

/** One day's rows grouped by kind (every kind listed, zeros included). */
export function dayUsage(prices: PriceTable, day: string, rows: readonly LedgerRow[]): DayUsage {
  const total: DayUsage = { day, ...zero(), kinds: [] };
  for (const kind of USAGE_KINDS) {
    const k: KindUsage = { kind, ...zero(), models: [] };
    for (const r of rows) {
      if (r.kind !== kind) continue;
      const m = modelUsage(prices, r);
      k.models.push(m);
      add(k, m);
    }
    total.kinds.push(k);
    add(total, k);
  }
  return total;
}

function budgetReport(
  limit: Budget | null,
  state: Awaited<ReturnType<typeof budgetState>>,
): BudgetReport | null {
  if (!limit) return null;
  return {
    limit,
    tokensUsed: state.tokens,
    costUsedUsd: state.costUsd,
    exceeded: state.exceeded,
    resetsAt: state.resetsAt,
  };
}

/** A user's usage: today, the last 30 UTC days by kind and model, and today's budgets. */
export async function usageReport(
  db: Db,
  policy: UsagePolicy,
  userId: string,
  now: Date,
): Promise<UsageReport> {
  const today = utcDay(now);
  const from = utcDay(new Date(now.getTime() - (REPORT_DAYS - 1) * 86_400_000));
  const rows = await readLedger(db, userId, from, today);
  const byDay = new Map<string, LedgerRow[]>();
  for (const r of rows) byDay.set(r.day, [...(byDay.get(r.day) ?? []), r]);
  const days = [...byDay].map(([day, list]) => dayUsage(policy.prices, day, list));
  const todayRows = byDay.get(today) ?? [];
  const [chat, memory] = await Promise.all(
    (['chat', 'memory'] as const).map((which) =>
      policy[which] ? budgetState(db, policy, which, userId, now) : null,
    ),
  );
  return {
    today: dayUsage(policy.prices, today, todayRows),
    days,
    chatBudget: chat ? budgetReport(policy.chat, chat) : null,
    memoryBudget: memory ? budgetReport(policy.memory, memory) : null,
  };
}
