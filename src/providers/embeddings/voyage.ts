import { z } from 'zod';
import { type Logger, silentLogger } from '../../logger.js';
import { HttpError, postJson, type RetryPolicy } from '../http.js';
import {
  EMBEDDING_DIMENSIONS,
  type Embedder,
  EmbeddingError,
  type EmbeddingInputType,
  type EmbeddingUsage,
} from './types.js';

/** Inputs per request: the limit this project holds Voyage calls to (see PLATFORM.md). */
export const VOYAGE_MAX_BATCH = 128;

export interface VoyageEmbedderOptions {
  apiKey: string;
  model: string;
  /** e.g. https://api.voyageai.com/v1 */
  baseUrl: string;
  timeoutMs: number;
  maxRetries: number;
  logger?: Logger;
  /** Backoff tuning; tests shorten it. */
  retry?: Partial<RetryPolicy>;
}

// zod 4's z.number() rejects NaN and ±Infinity, so a parsed vector holds only finite numbers.
const responseSchema = z.object({
  data: z.array(z.object({ embedding: z.array(z.number()), index: z.number().int().min(0) })),
  usage: z.object({ total_tokens: z.number() }).partial().optional(),
});

/**
 * Matryoshka models take `output_dimension`; the fixed-size ones (voyage-3-lite is 512,
 * voyage-3 is 1024) reject it, so it is sent only where it is accepted.
 */
export function acceptsOutputDimension(model: string): boolean {
  return (
    /^voyage-(3\.5|4)(-|$)/.test(model) || model === 'voyage-3-large' || model === 'voyage-code-3'
  );
}

export class VoyageEmbedder implements Embedder {
  readonly provider = 'voyage';
  readonly model: string;
  readonly #options: VoyageEmbedderOptions;
  readonly #url: string;
  readonly #logger: Logger;

  constructor(options: VoyageEmbedderOptions) {
    this.model = options.model;
    this.#options = options;
    this.#url = `${options.baseUrl.replace(/\/+$/, '')}/embeddings`;
    this.#logger = options.logger ?? silentLogger;
  }

  /** Batches run one after another: gentler on rate limits than firing them all at once. */
  async embed(
    texts: readonly string[],
    inputType: EmbeddingInputType,
    onUsage?: (usage: EmbeddingUsage) => void,
  ): Promise<number[][]> {
    const vectors: number[][] = [];
    for (let start = 0; start < texts.length; start += VOYAGE_MAX_BATCH) {
      const batch = texts.slice(start, start + VOYAGE_MAX_BATCH);
      vectors.push(...(await this.#embedBatch(batch, inputType, onUsage)));
    }
    return vectors;
  }

  async #embedBatch(
    input: string[],
    inputType: EmbeddingInputType,
    onUsage: ((usage: EmbeddingUsage) => void) | undefined,
  ): Promise<number[][]> {
    const started = performance.now();
    const body = {
      input,
      model: this.model,
      input_type: inputType,
      // Over-long texts are cut rather than failing the whole batch.
      truncation: true,
      ...(acceptsOutputDimension(this.model) ? { output_dimension: EMBEDDING_DIMENSIONS } : {}),
    };
    let json: unknown;
    try {
      json = await postJson({
        label: 'voyage',
        url: this.#url,
        apiKey: this.#options.apiKey,
        body,
        timeoutMs: this.#options.timeoutMs,
        maxRetries: this.#options.maxRetries,
        logger: this.#logger,
        retry: this.#options.retry,
      });
    } catch (error) {
      if (error instanceof HttpError) {
        throw new EmbeddingError(error.message, error.retryable, { cause: error });
      }
      throw error;
    }
    const { vectors, tokens } = this.#parse(json, input.length);
    if (tokens !== undefined) onUsage?.({ totalTokens: tokens });
    const ms = Math.round(performance.now() - started);
    this.#logger.debug(
      { model: this.model, inputs: input.length, tokens, ms },
      'voyage embeddings',
    );
    return vectors;
  }

  #parse(json: unknown, expected: number): { vectors: number[][]; tokens: number | undefined } {
    const parsed = responseSchema.safeParse(json);
    if (!parsed.success) {
      throw new EmbeddingError('voyage: unexpected response shape', true, { cause: parsed.error });
    }
    // The API documents `index` as the position in the input; order in `data` is not promised.
    const data = [...parsed.data.data].sort((a, b) => a.index - b.index);
    if (data.length !== expected || data.some((item, i) => item.index !== i)) {
      const message = `voyage: expected ${expected} embeddings, got ${data.length}`;
      throw new EmbeddingError(message, true);
    }
    const wrong = data.find((item) => item.embedding.length !== EMBEDDING_DIMENSIONS);
    if (wrong) {
      // A configuration error (wrong model); retrying cannot fix it.
      const message = `voyage: model ${this.model} returned ${wrong.embedding.length}-dimensional vectors, expected ${EMBEDDING_DIMENSIONS}`;
      throw new EmbeddingError(message, false);
    }
    return { vectors: data.map((item) => item.embedding), tokens: parsed.data.usage?.total_tokens };
  }
}
