/** Every embedder in this project produces vectors of this size, so one schema serves all. */
export const EMBEDDING_DIMENSIONS = 512;

/** Voyage distinguishes queries from documents; the local model ignores the hint. */
export type EmbeddingInputType = 'query' | 'document';

export interface Embedder {
  /** Stored on every memory row; searches only ever compare vectors of one model. */
  readonly model: string;
  /** "voyage" | "local": shown in logs and to admins. */
  readonly provider: string;
  /** One vector per input, in input order, each of EMBEDDING_DIMENSIONS numbers. */
  embed(texts: readonly string[], inputType: EmbeddingInputType): Promise<number[][]>;
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
