import type { DueFollowUp } from '../memory/follow-ups.js';
import type { ScoredMemory } from '../memory/store.js';
import type { ChatMessage } from '../providers/llm/types.js';
import { ageLabel, localDateOf, localDateTimeLabel, offsetLabel, shortDate } from '../time/zone.js';

export interface PromptInput {
  persona: { name: string; systemPrompt: string };
  profile: readonly ScoredMemory[];
  relationship: readonly ScoredMemory[];
  /** Recent messages of the session, oldest first, without the new one. */
  history: readonly { role: 'USER' | 'ASSISTANT'; content: string }[];
  userMessage: string;
  now: Date;
  /** The user's IANA zone: every date below is in their calendar. */
  timeZone?: string;
  /** The user's previous message to this persona; null: this is their first talk. */
  lastTalkAt?: Date | null;
  /** A due follow-up to ask about in this reply. */
  followUp?: DueFollowUp | null;
}

/**
 * When a memory was told, and when its event is: "told 3 weeks ago, Tue 10 Nov; on Fri 5 Dec".
 * The model needs both: the age for tone ("you mentioned a while ago"), the date to answer
 * "when did I tell you?".
 */
export function timeNote(
  memory: { createdAt: Date; occurredAt: Date | null },
  now: Date,
  zone: string,
): string {
  const today = localDateOf(now, zone);
  const age = ageLabel(memory.createdAt, now, zone);
  const told =
    age === 'today'
      ? 'told today'
      : `told ${age}, ${shortDate(localDateOf(memory.createdAt, zone), today)}`;
  if (!memory.occurredAt) return told;
  return `${told}; on ${shortDate(localDateOf(memory.occurredAt, zone), today)}`;
}

/** One memory as the prompt carries it (prompt-budget.ts prices sections by these lines). */
export function memoryLine(m: ScoredMemory, now: Date, zone: string): string {
  return `- ${m.memory.content} (${timeNote(m.memory, now, zone)})`;
}

function section(
  title: string,
  intro: string,
  items: readonly ScoredMemory[],
  now: Date,
  zone: string,
): string {
  if (items.length === 0) return `## ${title}\n(nothing yet)`;
  const lines = items.map((m) => memoryLine(m, now, zone));
  return `## ${title}\n${intro}\n${lines.join('\n')}`;
}

/** "It has been 3 weeks since the user last talked to you (Tue 10 Nov)." */
export function lastTalkLine(lastTalkAt: Date | null, now: Date, zone: string): string {
  if (!lastTalkAt) return 'This is your first conversation with the user.';
  const age = ageLabel(lastTalkAt, now, zone);
  if (age === 'today') return 'The user last talked to you earlier today.';
  const day = shortDate(localDateOf(lastTalkAt, zone), localDateOf(now, zone));
  return `The user last talked to you ${age} (${day}); greet them accordingly.`;
}

/**
 * The prompt keeps the two memory layers in separate, labelled sections: what every persona
 * may know about the user, and what happened between the user and this persona. Merging them
 * into one bag makes a model attribute one persona's shared history to another. Time is the
 * user's: today and every date are in their zone.
 */
export function buildPrompt(input: PromptInput): ChatMessage[] {
  const zone = input.timeZone ?? 'UTC';
  const now = input.now;
  const followUp = input.followUp;
  const system = [
    input.persona.systemPrompt.trim(),
    `Now, in the user's time zone: ${localDateTimeLabel(now, zone)} (${zone}, ${offsetLabel(now, zone)}).`,
    lastTalkLine(input.lastTalkAt ?? null, now, zone),
    section(
      'What you know about the user',
      'Facts the user shared (with you or another companion), each with when it was told. Use them naturally; never list them.',
      input.profile,
      now,
      zone,
    ),
    section(
      `Your history with the user (as ${input.persona.name})`,
      'Things that happened between the two of you.',
      input.relationship,
      now,
      zone,
    ),
    ...(followUp
      ? [
          `## Follow up\nThe user told you about this and its day has now passed: "${followUp.content}"` +
            `${followUp.occurredAt ? ` (on ${shortDate(localDateOf(followUp.occurredAt, zone), localDateOf(now, zone))})` : ''}. ` +
            'Ask how it went, once, warmly and briefly; do not ask again later.',
        ]
      : []),
    'If a remembered fact conflicts with what the user says now, trust the user and ask kindly.',
  ].join('\n\n');

  return [
    { role: 'system', content: system },
    ...input.history.map((m) => ({
      role: m.role === 'USER' ? ('user' as const) : ('assistant' as const),
      content: m.content,
    })),
    { role: 'user', content: input.userMessage },
  ];
}
