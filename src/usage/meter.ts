import type { ExtractionInput, MemoryCandidate, MemoryExtractor } from '../memory/types.js';
import type { Embedder, EmbeddingUsage } from '../providers/embeddings/types.js';
import type { ChatCompletion, ChatMessage } from '../providers/llm/types.js';
import { countWords, mergeEntries, type UsageEntry, type UsageKind } from './types.js';

/** The ledger's model id of the offline rule-based extractor (it has no model of its own). */
export const OFFLINE_EXTRACTOR_MODEL = 'offline-extractor';

/** Providers that run on this server and report no tokens: their usage is a word count. */
const ESTIMATING_PROVIDERS: ReadonlySet<string> = new Set(['offline', 'local']);

/**
 * Collects the provider usage of one piece of work (a turn, an extraction job, a remembered
 * memory), so it is written to the ledger together with that work's own rows. Provider counts
 * are used as reported (OpenRouter `usage`, Voyage `usage.total_tokens`); where a provider
 * reports none, words are counted and the entry says it was estimated.
 */
export class UsageMeter {
  readonly #entries: UsageEntry[] = [];

  add(
    kind: UsageKind,
    model: string,
    counts: { input: number; output: number },
    estimated: boolean,
  ) {
    this.#entries.push({
      kind,
      model,
      requests: 1,
      inputTokens: Math.max(0, Math.round(counts.input)),
      outputTokens: Math.max(0, Math.round(counts.output)),
      estimatedRequests: estimated ? 1 : 0,
    });
  }

  /** Forgets what was recorded (once it is written). */
  clear(): void {
    this.#entries.length = 0;
  }

  /** One row per kind and model. */
  entries(): UsageEntry[] {
    return mergeEntries(this.#entries);
  }

  /** A reply: the completion's token counts, or words of the prompt and reply. */
  chat(provider: string, messages: readonly ChatMessage[], completion: ChatCompletion) {
    const reported =
      !ESTIMATING_PROVIDERS.has(provider) &&
      completion.promptTokens !== null &&
      completion.completionTokens !== null;
    this.add(
      'chat',
      completion.model,
      reported
        ? { input: completion.promptTokens ?? 0, output: completion.completionTokens ?? 0 }
        : {
            input: countWords(...messages.map((m) => m.content)),
            output: countWords(completion.content),
          },
      !reported,
    );
  }

  /** The embedder, with every call's usage recorded here (kind `embedding`). */
  embedder(inner: Embedder): Embedder {
    const estimating = ESTIMATING_PROVIDERS.has(inner.provider);
    return {
      model: inner.model,
      provider: inner.provider,
      embed: async (texts, inputType, onUsage) => {
        const calls: EmbeddingUsage[] = [];
        const vectors = await inner.embed(texts, inputType, (usage) => {
          calls.push(usage);
          onUsage?.(usage);
        });
        if (calls.length > 0 && !estimating) {
          // One ledger request per provider call (Voyage: a batch of up to 128 texts).
          for (const call of calls) {
            this.add('embedding', inner.model, { input: call.totalTokens, output: 0 }, false);
          }
        } else {
          this.add('embedding', inner.model, { input: countWords(...texts), output: 0 }, true);
        }
        return vectors;
      },
      close: inner.close ? () => inner.close?.() ?? Promise.resolve() : undefined,
    };
  }

  /** The extractor, with its LLM calls recorded here (kind `extraction`). */
  extractor(inner: MemoryExtractor): MemoryExtractor {
    return {
      provider: inner.provider,
      extract: async (input: ExtractionInput): Promise<MemoryCandidate[]> => {
        let calls = 0;
        const candidates = await inner.extract({
          ...input,
          onUsage: (usage) => {
            calls++;
            const reported = usage.inputTokens !== null && usage.outputTokens !== null;
            this.add(
              'extraction',
              usage.model,
              { input: usage.inputTokens ?? 0, output: usage.outputTokens ?? 0 },
              !reported,
            );
            input.onUsage?.(usage);
          },
        });
        if (calls === 0) {
          // The offline extractor: words read and words written.
          const read = countWords(
            input.userMessage,
            input.reply,
            ...input.priorMessages.map((m) => m.content),
          );
          const written = countWords(...candidates.map((c) => c.content));
          this.add('extraction', OFFLINE_EXTRACTOR_MODEL, { input: read, output: written }, true);
        }
        return candidates;
      },
    };
  }
}
