import type { Db } from '../memory/store.js';
import type { Metrics } from '../metrics.js';
import { ledgerUpsertSql } from './ledger.js';
import type { UsageMeter } from './meter.js';
import type { UsageEntry } from './types.js';

/**
 * Writes a meter's entries to the ledger on `db` (pass the work's transaction) and returns a
 * function that counts them in Prometheus: call it once the transaction has committed, so a
 * rolled-back attempt is not counted twice.
 */
export async function writeUsage(
  db: Db,
  metrics: Metrics,
  userId: string,
  at: Date,
  meter: UsageMeter,
): Promise<() => void> {
  const entries = meter.entries();
  const sql = ledgerUpsertSql(userId, at, entries);
  if (sql) await db.$executeRaw(sql);
  return () => countUsage(metrics, entries);
}

export function countUsage(metrics: Metrics, entries: readonly UsageEntry[]): void {
  for (const e of entries) {
    metrics.usageRequests.inc({ kind: e.kind, model: e.model }, e.requests);
    metrics.usageTokens.inc({ kind: e.kind, model: e.model, direction: 'input' }, e.inputTokens);
    metrics.usageTokens.inc({ kind: e.kind, model: e.model, direction: 'output' }, e.outputTokens);
  }
}
