/**
 * Session settings every database connection gets before its first query (src/db/client.ts).
 *
 * - `jit = off`: a turn's recall is one statement over both layers whose estimated cost
 *   (inflated by the never-run branch of each layer's exact-or-index switch and by pgvector's
 *   HNSW estimates) passes `jit_above_cost`; compiling it then costs ~0.5 s for a statement
 *   that runs in milliseconds. Nothing this server runs is long enough for JIT to pay.
 *
 * The others only matter to recall's approximate path (src/memory/store.ts): a layer large
 * enough to be ranked through its HNSW index. Session-level, because a single statement cannot
 * set them and a transaction around every recall would cost two more round trips per turn:
 * - `hnsw.iterative_scan = relaxed_order` (pgvector ≥ 0.8): the index is shared by every user's
 *   layer and filtered to one user after the scan; without iterative scans a filtered scan stops
 *   after `ef_search` candidates and can return fewer rows than asked.
 * - `hnsw.ef_search`: candidates kept per scan; as many as the meaning side asks for
 *   (RECALL_VECTOR_DEPTH, 100 by default), so its whole depth comes from the first pass and the
 *   iterative scan only tops it up where the user filter dropped rows. 100 rather than 200:
 *   the same answers (overlap 1.000 with the exact ranking in every heavy-user run), and no
 *   slower (three runs: 0.73-1.04x the heavy recall's p50 at 200; BENCHMARKS.md §2).
 * Unknown to the server before the vector library loads, they are kept as placeholders and
 * taken up when it does. Small layers never use the index, so nothing else is affected.
 *
 * On PostgreSQL they travel in the connection's start-up packet (`options`). A pooler that
 * refuses start-up options (PgBouncer unless `ignore_startup_parameters` lists `options`) or
 * drops them leaves the index path with pgvector's defaults (ef_search 40, no iterative scan):
 * still correct, less complete for large layers. Connect directly or in session mode.
 */
export const DEFAULT_HNSW_EF_SEARCH = 100;

export interface SessionSettings {
  hnswEfSearch?: number;
}

function settingsOf(settings: SessionSettings): [string, string][] {
  const ef = settings.hnswEfSearch ?? DEFAULT_HNSW_EF_SEARCH;
  if (!Number.isInteger(ef) || ef < 1 || ef > 1000) {
    throw new Error(`hnsw ef_search must be an integer in 1..1000, got ${ef}`);
  }
  return [
    ['jit', 'off'],
    ['hnsw.iterative_scan', 'relaxed_order'],
    ['hnsw.ef_search', String(ef)],
  ];
}

/** As SET statements, one string (PGlite: one session, set once when it opens). */
export function sessionSettingsSql(settings: SessionSettings = {}): string {
  return settingsOf(settings)
    .map(([name, value]) => `SET ${name} = ${value};`)
    .join(' ');
}

/** As the start-up packet's `options` (PostgreSQL: every pooled connection, before its first query). */
export function sessionSettingsOptions(settings: SessionSettings = {}): string {
  return settingsOf(settings)
    .map(([name, value]) => `-c ${name}=${value}`)
    .join(' ');
}
