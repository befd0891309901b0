/**
 * Session settings every database connection gets before its first query (src/db/client.ts).
 *
 * They only matter to recall's approximate path (src/memory/store.ts): a layer large enough to
 * be ranked through its HNSW index. Session-level SET, because a single statement cannot set
 * them and a transaction around every recall would cost two more round trips per turn:
 * - `hnsw.iterative_scan = relaxed_order` (pgvector ≥ 0.8): the index is shared by every user's
 *   layer and filtered to one user after the scan; without iterative scans a filtered scan stops
 *   after `ef_search` candidates and can return fewer rows than asked.
 * - `hnsw.ef_search`: candidates kept per scan; above the rows the meaning side asks for
 *   (RECALL_VECTOR_DEPTH, at most 200), so the top of the list is close to exact.
 * Unknown to the server before the vector library loads, they are kept as placeholders and
 * taken up when it does. Small layers never use the index, so nothing else is affected.
 *
 * Behind a transaction-mode pooler (PgBouncer, Supavisor) session settings do not stick to a
 * client: connect the server directly or in session mode (README "Database").
 */
export const DEFAULT_HNSW_EF_SEARCH = 200;

export interface SessionSettings {
  hnswEfSearch?: number;
}

/** The SET statements, one string (the simple query protocol runs them in one round trip). */
export function sessionSettingsSql(settings: SessionSettings = {}): string {
  const ef = settings.hnswEfSearch ?? DEFAULT_HNSW_EF_SEARCH;
  if (!Number.isInteger(ef) || ef < 1 || ef > 1000) {
    throw new Error(`hnsw ef_search must be an integer in 1..1000, got ${ef}`);
  }
  return `SET hnsw.iterative_scan = relaxed_order; SET hnsw.ef_search = ${ef};`;
}
