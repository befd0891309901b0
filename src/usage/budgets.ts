import { AppError } from '../errors.js';
import type { Db } from '../memory/store.js';
import { readLedger } from './ledger.js';
import { costOf, type PriceTable } from './prices.js';
import { nextUtcMidnight, type UsageKind, utcDay } from './types.js';

/** A daily budget: tokens (input + output) and/or estimated USD; unset parts do not limit. */
export interface Budget {
  tokens: number | null;
  costUsd: number | null;
}

export interface UsagePolicy {
  prices: PriceTable;
  /** Replies (kind chat) per user and UTC day; null: no budget. */
  chat: Budget | null;
  /** Extraction and embedding per user and UTC day; null: no budget. */
  memory: Budget | null;
}

export const BUDGET_KINDS: Record<'chat' | 'memory', readonly UsageKind[]> = {
  chat: ['chat'],
  memory: ['extraction', 'embedding'],
};

export interface BudgetState {
  tokens: number;
  /** USD of the priced models (usage of a model without a price is not counted here). */
  costUsd: number;
  exceeded: boolean;
  resetsAt: Date;
}

/**
 * Today's spend against one budget: one read of the user's rows of today (primary-key range).
 * A budget is exceeded once today's spend reached it: the work that crossed it was already
 * done, the next one waits for the reset at 00:00 UTC.
 */
export async function budgetState(
  db: Db,
  policy: UsagePolicy,
  which: 'chat' | 'memory',
  userId: string,
  now: Date,
): Promise<BudgetState> {
  const budget = policy[which];
  const day = utcDay(now);
  const rows = await readLedger(db, userId, day, day, BUDGET_KINDS[which]);
  let tokens = 0;
  let costUsd = 0;
  for (const r of rows) {
    tokens += r.inputTokens + r.outputTokens;
    costUsd += costOf(policy.prices, r.model, r.inputTokens, r.outputTokens) ?? 0;
  }
  const exceeded =
    budget !== null &&
    ((budget.tokens !== null && tokens >= budget.tokens) ||
      (budget.costUsd !== null && costUsd >= budget.costUsd));
  return { tokens, costUsd, exceeded, resetsAt: nextUtcMidnight(now) };
}

/**
 * Refuses a turn over the user's daily chat budget with BUDGET_EXCEEDED, saying when it resets.
 * Without a chat budget it reads nothing.
 */
export async function assertChatBudget(
  db: Db,
  policy: UsagePolicy,
  userId: string,
  now: Date,
  onExceeded: () => void,
): Promise<void> {
  if (!policy.chat) return;
  const state = await budgetState(db, policy, 'chat', userId, now);
  if (!state.exceeded) return;
  onExceeded();
  const retryAfterSeconds = Math.max(
    1,
    Math.ceil((state.resetsAt.getTime() - now.getTime()) / 1000),
  );
  throw new AppError(
    'BUDGET_EXCEEDED',
    `Today's chat budget is used up; it resets at ${state.resetsAt.toISOString()}.`,
    { budget: 'chat', resetsAt: state.resetsAt.toISOString(), retryAfterSeconds },
  );
}

/**
 * Milliseconds until the memory budget resets when the user is over it (extraction waits that
 * long), or null when the work may run. Without a memory budget it reads nothing.
 */
export async function memoryBudgetDelay(
  db: Db,
  policy: UsagePolicy,
  userId: string,
  now: Date,
): Promise<number | null> {
  if (!policy.memory) return null;
  const state = await budgetState(db, policy, 'memory', userId, now);
  if (!state.exceeded) return null;
  return Math.max(1000, state.resetsAt.getTime() - now.getTime());
}
