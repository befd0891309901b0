import type { Env } from '../env.js';
import type { Logger } from '../logger.js';
import { LlmExtractor } from '../memory/extract-llm.js';
import { OfflineExtractor } from '../memory/extract-offline.js';
import type { MemoryExtractor } from '../memory/types.js';
import { LocalEmbedder } from './embeddings/local.js';
import type { Embedder } from './embeddings/types.js';
import { VoyageEmbedder } from './embeddings/voyage.js';
import { OfflineCompanion } from './llm/offline.js';
import { OpenRouterChatModel } from './llm/openrouter.js';
import type { ChatModel } from './llm/types.js';

export interface Providers {
  embedder: Embedder;
  chat: ChatModel;
  extractor: MemoryExtractor;
}

/** Chosen by config; zero config means the offline pair, labelled as such in logs and the API. */
export function createProviders(env: Env, logger: Logger): Providers {
  const embedder: Embedder =
    env.EMBEDDINGS_PROVIDER === 'voyage'
      ? new VoyageEmbedder({
          apiKey: env.VOYAGE_API_KEY ?? '',
          model: env.VOYAGE_MODEL,
          baseUrl: env.VOYAGE_BASE_URL,
          timeoutMs: env.VOYAGE_TIMEOUT_MS,
          maxRetries: env.VOYAGE_MAX_RETRIES,
          logger,
        })
      : new LocalEmbedder({ logger });
  if (env.LLM_PROVIDER === 'openrouter') {
    const openrouter = new OpenRouterChatModel({
      apiKey: env.OPENROUTER_API_KEY ?? '',
      baseUrl: env.OPENROUTER_BASE_URL,
      model: env.OPENROUTER_CHAT_MODEL,
      fallbackModels: env.OPENROUTER_FALLBACK_MODELS,
      timeoutMs: env.OPENROUTER_TIMEOUT_MS,
      maxRetries: env.OPENROUTER_MAX_RETRIES,
      maxTokens: env.OPENROUTER_MAX_TOKENS,
      logger,
    });
    const extractor = new LlmExtractor({
      llm: openrouter,
      model: env.OPENROUTER_EXTRACTION_MODEL,
      logger,
    });
    return { embedder, chat: openrouter, extractor };
  }
  return { embedder, chat: new OfflineCompanion(), extractor: new OfflineExtractor() };
}
