/**
 * How recall fuses its two rankings of one layer (src/memory/store.ts, searchLayerHybrid): the
 * nearest memories by meaning (cosine) and the best by words (BM25). Weighted reciprocal rank
 * fusion: a memory ranked r by a side earns weight / (rrfK + r) from it. Ranks, not scores, are
 * fused because cosine and BM25 live on unrelated scales (BM25 grows with the number of query
 * words; a cosine of 0.3 is good for one embedder and poor for another).
 *
 * The defaults are settings (src/env.ts, RECALL_*), chosen once on the LoCoMo dev file as a
 * whole (BENCHMARKS.md §1), never per question.
 */
export interface FusionSettings {
  /** Weight of the meaning side. */
  vectorWeight: number;
  /** Weight of the words side. */
  lexicalWeight: number;
  /** Rows the meaning side contributes before fusion. */
  vectorDepth: number;
  /** Rows the words side contributes before fusion. */
  lexicalDepth: number;
  /** The RRF constant: larger flattens the advantage of the first few ranks. */
  rrfK: number;
  /**
   * Layers with at least this many live memories find their meaning side through the layer's
   * HNSW index (approximate, pgvector iterative scan); smaller layers are ranked exactly.
   */
  annMinRows: number;
  /**
   * Rows the meaning side contributes for a layer on the index path (at most `vectorDepth`).
   */
  annVectorDepth: number;
}

/**
 * Where an exact scan stops being cheap: ~2 µs per 512-dimension row on PostgreSQL 15 (inline
 * storage), so 5 000 rows cost ~10 ms per layer, the budget of a whole typical turn recall. Below
 * it every user is ranked exactly (an HNSW index filtered to a small user finds almost none of
 * their rows, BENCHMARKS.md §2); above it the index answers in a few milliseconds at any size.
 */
export const ANN_MIN_ROWS = 5_000;

/**
 * The meaning side's depth in a large layer (the HNSW path). The index is shared by every user's
 * layer and filtered to one user while it is walked (pgvector's iterative scan), so its cost
 * grows with the rows asked for divided by the user's share of the index: 100 rows of a heavy
 * user holding half of it took two rounds of `ef_search` candidates, 50 take one (the meaning
 * side's backend CPU halved, BENCHMARKS.md §2). Ranks past 50 earn at most 1/60 of the meaning
 * weight; the fusion grid on LoCoMo found depths 50–100 within 0.5 points of each other, and
 * the heavy user's turn recall returned the same memories as at depth 100.
 */
export const ANN_VECTOR_DEPTH = 50;

/**
 * Chosen with `bench/locomo.ts --fusion-grid` on the LoCoMo dev file (760 questions, offline
 * USE-lite embedder; BENCHMARKS.md §1): words weigh 1.5x meaning, a small RRF constant (10)
 * so the first few ranks of each side count, 100 rows per side. The neighbourhood (weight
 * 1.5–2, k 10, depth 50–100) is flat within 0.5 points of R@10, so nothing hinges on the exact
 * values; equal weights with k 60 (the textbook default) lose 6.7 points, below BM25 alone.
 */
export const DEFAULT_FUSION: FusionSettings = {
  vectorWeight: 1,
  lexicalWeight: 1.5,
  vectorDepth: 100,
  lexicalDepth: 100,
  rrfK: 10,
  annMinRows: ANN_MIN_ROWS,
  annVectorDepth: ANN_VECTOR_DEPTH,
};
