import type { MemoryCandidate } from './types.js';

/**
 * Only the new turn is a source of memories. The extractor also reads a few earlier messages,
 * so it can tell what a "yes" answered; but those messages may hold facts the user has since
 * forgotten (forgetMemories deletes memories, not messages), and a candidate drawn from them
 * would write a forgotten fact back. The prompt says so; this check does not trust the model
 * to have listened:
 *
 * - A candidate with `evidence` (the prompt asks for the words of this turn that state it)
 *   is kept only if those words are in this turn (the user's message or the persona's reply),
 *   compared word by word, ignoring case and punctuation.
 * - A candidate without evidence (the offline extractor, a model that left it out) is dropped
 *   when none of its distinctive words is in this turn and some are in the earlier messages:
 *   it can only have come from the context. One word of the turn is enough to keep it, since
 *   a correction rewords ("I moved to Porto" gives "User lives in Porto", and "lives" may well
 *   be a word of the context).
 *
 * A word-level check, not a semantic one: a model that quotes this turn for a fact it took
 * from the context gets through, so the prompt's rule remains the first line of defence.
 */
export interface TurnText {
  userMessage: string;
  reply: string;
  /** The earlier messages the extractor was shown. */
  context: string[];
  personaName: string;
}

export function fromThisTurn(
  candidates: MemoryCandidate[],
  turn: TurnText,
): { kept: MemoryCandidate[]; dropped: number } {
  const turnWords = words(`${turn.userMessage}\n${turn.reply}`);
  const turnText = ` ${turnWords.join(' ')} `;
  const contextWords = new Set(words(turn.context.join('\n')));
  const ignored = new Set([...STOPWORDS, ...words(turn.personaName)]);
  const kept = candidates.filter((c) => {
    if (c.evidence !== undefined) {
      const quoted = c.evidence
        .split(/\.{3}|…/)
        .map((part) => words(part).join(' '))
        .filter((part) => part !== '');
      return quoted.length > 0 && quoted.every((part) => turnText.includes(` ${part} `));
    }
    const distinctive = words(c.content).filter(
      (w) => (w.length >= 3 || /\d/.test(w)) && !ignored.has(w),
    );
    if (distinctive.some((w) => turnWords.some((t) => sameWord(w, t)))) return true;
    return !distinctive.some((w) => [...contextWords].some((t) => sameWord(w, t)));
  });
  return { kept, dropped: candidates.length - kept.length };
}

function words(text: string): string[] {
  return (
    text
      .toLowerCase()
      .normalize('NFKC')
      .replace(/[’‘`]/g, "'")
      .match(/[\p{L}\p{N}]+(?:'[\p{L}]+)*/gu) ?? []
  );
}

/** Equal, or the same stem as far as English inflection goes ("lives"/"live", "moved"/"move"). */
function sameWord(a: string, b: string): boolean {
  if (a === b) return true;
  let common = 0;
  while (common < a.length && common < b.length && a[common] === b[common]) common++;
  return common >= 4 && common >= Math.min(a.length, b.length) - 2;
}

/** Words a memory's phrasing adds on its own ("User has a…"), never evidence of a source. */
const STOPWORDS = `user user's users the and but for with about from that this these those their
them they then than there here into onto over under also very not nor yet are was were has have
had having does did doing done will would can could should may might must shall been being its
it's his her hers him she he who whom whose what when where which why how all any some each every
more most much many other such only own same too just now again once our ours your yours you
per via out off own`
  .split(/\s+/)
  .filter(Boolean);
