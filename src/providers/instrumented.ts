import type { MemoryExtractor } from '../memory/types.js';
import type { Metrics } from '../metrics.js';
import type { Embedder } from './embeddings/types.js';
import type { ChatModel } from './llm/types.js';

/**
 * Wraps providers so every call is timed and counted by provider and outcome, whatever the
 * implementation. Prototype methods (close, warmUp, …) stay reachable through the original.
 */
export function instrumentEmbedder(e: Embedder, metrics: Metrics): Embedder {
  return {
    model: e.model,
    provider: e.provider,
    embed: (texts, inputType, onUsage) =>
      metrics.time(e.provider, `embed_${inputType}`, () => e.embed(texts, inputType, onUsage)),
    close: e.close ? () => e.close?.() ?? Promise.resolve() : undefined,
  };
}

export function instrumentChat(c: ChatModel, metrics: Metrics): ChatModel {
  return {
    provider: c.provider,
    complete: (request) => metrics.time(c.provider, 'chat', () => c.complete(request)),
    // Same operation: a streamed reply is still one chat call, and dashboards keep one series.
    stream: (request, onDelta) =>
      metrics.time(c.provider, 'chat', () => c.stream(request, onDelta)),
  };
}

export function instrumentExtractor(x: MemoryExtractor, metrics: Metrics): MemoryExtractor {
  return {
    provider: x.provider,
    extract: (input) => metrics.time(x.provider, 'extract', () => x.extract(input)),
  };
}
