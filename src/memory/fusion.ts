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
}

export const DEFAULT_FUSION: FusionSettings = {
  vectorWeight: 1,
  lexicalWeight: 1,
  vectorDepth: 50,
  lexicalDepth: 50,
  rrfK: 60,
};
