import type { ScoredMemory } from '../memory/store.js';
import { memoryLine } from './prompt.js';

/**
 * Token estimates for the prompt, without a tokenizer: one token per 4 characters (rounded
 * up), the usual rule of thumb for English with OpenAI-style tokenizers. It is an estimate for
 * budgeting the prompt; the usage ledger records what the provider counted.
 */
export const CHARS_PER_TOKEN = 4;

export function estimateTokens(text: string): number {
  return Math.ceil(text.length / CHARS_PER_TOKEN);
}

/**
 * The memories of one section that fit `budget` estimated tokens (each memory's prompt line
 * plus its newline), best-ranked first: the lowest-ranked are left out first. Every memory
 * line and every turn pays for the memory sections, so they are bounded like the history is.
 */
export function fitSection(
  items: readonly ScoredMemory[],
  budget: number,
  now: Date,
  zone: string,
): ScoredMemory[] {
  const kept: ScoredMemory[] = [];
  let used = 0;
  for (const m of items) {
    used += estimateTokens(`${memoryLine(m, now, zone)}\n`);
    if (used > budget) break;
    kept.push(m);
  }
  return kept;
}

/** Both layers of a recall fitted to the per-section budget (PROMPT_MEMORY_SECTION_TOKENS). */
export function fitMemorySections<
  T extends { profile: ScoredMemory[]; relationship: ScoredMemory[] },
>(recalled: T, budget: number, now: Date, zone: string): T {
  return {
    ...recalled,
    profile: fitSection(recalled.profile, budget, now, zone),
    relationship: fitSection(recalled.relationship, budget, now, zone),
  };
}
