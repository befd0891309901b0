import type { Logger } from '../logger.js';
import { contentHash } from './store.js';
import { MEMORY_CATEGORIES, type MemoryCandidate } from './types.js';

/**
 * Keeps junk out of memory: blank or over-long items are dropped (truncating a memory can
 * invert its meaning), unknown categories become OTHER, repeats within the turn collapse,
 * and at most `maxCount` items survive, most confident first.
 */
export function guardCandidates(
  candidates: readonly MemoryCandidate[],
  limits: { maxChars: number; maxCount: number },
  logger: Logger,
): MemoryCandidate[] {
  const seen = new Set<string>();
  const kept: MemoryCandidate[] = [];
  let dropped = 0;
  for (const c of candidates) {
    const content = c.content.replace(/\s+/g, ' ').trim();
    const key = `${c.layer}:${contentHash(content)}`;
    if (!content || content.length > limits.maxChars || seen.has(key)) {
      dropped++;
      continue;
    }
    seen.add(key);
    const category = MEMORY_CATEGORIES.includes(c.category) ? c.category : 'OTHER';
    kept.push({ ...c, content, category });
  }
  kept.sort((a, b) => (b.confidence ?? 0.5) - (a.confidence ?? 0.5));
  if (kept.length > limits.maxCount) dropped += kept.length - limits.maxCount;
  if (dropped > 0) logger.info({ dropped }, 'memory candidates dropped by the guard');
  return kept.slice(0, limits.maxCount);
}
