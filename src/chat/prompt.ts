import type { ScoredMemory } from '../memory/store.js';
import type { ChatMessage } from '../providers/llm/types.js';

export interface PromptInput {
  persona: { name: string; systemPrompt: string };
  profile: readonly ScoredMemory[];
  relationship: readonly ScoredMemory[];
  /** Recent messages of the session, oldest first, without the new one. */
  history: readonly { role: 'USER' | 'ASSISTANT'; content: string }[];
  userMessage: string;
  now: Date;
}

function section(title: string, intro: string, items: readonly ScoredMemory[]): string {
  if (items.length === 0) return `## ${title}\n(nothing yet)`;
  return `## ${title}\n${intro}\n${items.map((m) => `- ${m.memory.content}`).join('\n')}`;
}

/**
 * The prompt keeps the two memory layers in separate, labelled sections: what every persona
 * may know about the user, and what happened between the user and this persona. Merging them
 * into one bag makes a model attribute one persona's shared history to another.
 */
export function buildPrompt(input: PromptInput): ChatMessage[] {
  const system = [
    input.persona.systemPrompt.trim(),
    `Current date: ${input.now.toISOString().slice(0, 10)}.`,
    section(
      'What you know about the user',
      'Facts the user shared (with you or another companion). Use them naturally; never list them.',
      input.profile,
    ),
    section(
      `Your history with the user (as ${input.persona.name})`,
      'Things that happened between the two of you.',
      input.relationship,
    ),
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
