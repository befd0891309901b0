/** What a provider call was for: a reply, a memory extraction, or embedding text. */
export const USAGE_KINDS = ['chat', 'extraction', 'embedding'] as const;
export type UsageKind = (typeof USAGE_KINDS)[number];

/** One provider call's usage, or several of one kind and model added up. */
export interface UsageEntry {
  kind: UsageKind;
  model: string;
  requests: number;
  inputTokens: number;
  outputTokens: number;
  /** Requests whose tokens are a word count (offline providers, or no usage reported). */
  estimatedRequests: number;
}

/** Ledger model ids are bounded: a provider's answer (OpenRouter's `model`) is not trusted. */
export const MAX_MODEL_CHARS = 200;

/**
 * The estimate for providers that report no usage (the offline companion, extractor and
 * embedder run locally and have no tokenizer): whitespace-separated words. Ledger rows say
 * how many of their requests were estimated.
 */
export function countWords(...texts: readonly string[]): number {
  let n = 0;
  for (const text of texts) {
    const trimmed = text.trim();
    if (trimmed) n += trimmed.split(/\s+/).length;
  }
  return n;
}

/** Adds entries of the same kind and model together (one ledger row each). */
export function mergeEntries(entries: readonly UsageEntry[]): UsageEntry[] {
  const byKey = new Map<string, UsageEntry>();
  for (const e of entries) {
    const model = e.model.slice(0, MAX_MODEL_CHARS) || 'unknown';
    const key = `${e.kind}\u0000${model}`;
    const sum = byKey.get(key);
    if (!sum) {
      byKey.set(key, { ...e, model });
      continue;
    }
    sum.requests += e.requests;
    sum.inputTokens += e.inputTokens;
    sum.outputTokens += e.outputTokens;
    sum.estimatedRequests += e.estimatedRequests;
  }
  return [...byKey.values()];
}

/** The UTC calendar day of an instant, as YYYY-MM-DD: the ledger's day and the budgets' day. */
export function utcDay(at: Date): string {
  return at.toISOString().slice(0, 10);
}

/** 00:00 UTC of the day after `at`: when a day's budgets reset. */
export function nextUtcMidnight(at: Date): Date {
  return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate() + 1));
}
