/** Every embedder in this project produces vectors of this size, so one schema serves all. */
export const EMBEDDING_DIMENSIONS = 512;

/** Voyage distinguishes queries from documents; the local model ignores the hint. */
export type EmbeddingInputType = 'query' | 'document';

/** What the provider reported for one of its calls (a batch): Voyage's `usage.total_tokens`. */
export interface EmbeddingUsage {
  totalTokens: number;
}

export interface Embedder {
  /** Stored on every memory row; searches only ever compare vectors of one model. */
  readonly model: string;
  /** "voyage" | "local": shown in logs and to admins. */
  readonly provider: string;
  /**
   * One vector per input, in input order, each of EMBEDDING_DIMENSIONS numbers. `onUsage` is
   * called once per provider call that reported its tokens (src/usage/meter.ts counts words
   * for a provider that reports none).
   */
  embed(
    texts: readonly string[],
    inputType: EmbeddingInputType,
    onUsage?: (usage: EmbeddingUsage) => void,
  ): Promise<number[][]>;
  close?(): Promise<void>;
}

export class EmbeddingError extends Error {
  override readonly name = 'EmbeddingError';
  constructor(
    message: string,
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
