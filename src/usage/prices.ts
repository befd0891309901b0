import { z } from 'zod';
import { LOCAL_EMBEDDING_MODEL } from '../providers/embeddings/local.js';
import { OFFLINE_COMPANION_MODEL } from '../providers/llm/offline.js';
import { OFFLINE_EXTRACTOR_MODEL } from './meter.js';

/** US dollars per million tokens, input and output, of one model. */
export interface ModelPrice {
  input: number;
  output: number;
}
export type PriceTable = ReadonlyMap<string, ModelPrice>;

/**
 * Prices of the default models (USD per million tokens, as the providers list them at the time
 * of writing: OpenRouter's openai/gpt-4o-mini $0.15 in / $0.60 out; Voyage's voyage-3-lite and
 * voyage-3.5-lite $0.02 per input token, embeddings have no output). The offline models run on
 * the server itself: they cost nothing per token. Any other model has no price until
 * USAGE_PRICES gives it one, and its cost reads as unknown (null), never as 0.
 */
export const DEFAULT_PRICES: Readonly<Record<string, ModelPrice>> = {
  'openai/gpt-4o-mini': { input: 0.15, output: 0.6 },
  'voyage-3-lite': { input: 0.02, output: 0 },
  'voyage-3.5-lite': { input: 0.02, output: 0 },
  [OFFLINE_COMPANION_MODEL]: { input: 0, output: 0 },
  [OFFLINE_EXTRACTOR_MODEL]: { input: 0, output: 0 },
  [LOCAL_EMBEDDING_MODEL]: { input: 0, output: 0 },
};

const priceSchema = z.object({
  input: z.number().min(0).max(1_000_000),
  output: z.number().min(0).max(1_000_000),
});
/** USAGE_PRICES: a JSON object of model id → { input, output } (USD per million tokens). */
export const pricesJsonSchema = z
  .string()
  .transform((text, ctx) => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be a JSON object' });
      return z.NEVER;
    }
  })
  .pipe(z.record(z.string().min(1).max(200), priceSchema));

/** The defaults with the configured entries on top (a configured model replaces its default). */
export function priceTable(configured: Readonly<Record<string, ModelPrice>> = {}): PriceTable {
  return new Map(Object.entries({ ...DEFAULT_PRICES, ...configured }));
}

/** Estimated USD of some tokens of one model; null when the model has no price. */
export function costOf(
  prices: PriceTable,
  model: string,
  inputTokens: number,
  outputTokens: number,
): number | null {
  const price = prices.get(model);
  if (!price) return null;
  return (inputTokens * price.input + outputTokens * price.output) / 1_000_000;
}
