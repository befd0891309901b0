import type { ChatMessage } from '../providers/llm/types.js';

export const MEMORY_CATEGORIES = [
  'FACT',
  'PREFERENCE',
  'EVENT',
  'EMOTION',
  'RELATION',
  'OTHER',
] as const;
export type MemoryCategory = (typeof MEMORY_CATEGORIES)[number];

/** PROFILE: about the user, shared by every persona. RELATIONSHIP: this user × one persona. */
export type MemoryLayer = 'PROFILE' | 'RELATIONSHIP';

export interface MemoryCandidate {
  content: string;
  category: MemoryCategory;
  layer: MemoryLayer;
  confidence?: number;
  /** Id of an existing memory this one corrects (supersede instead of adding beside it). */
  supersedes?: string;
  /** The words of this turn that state it (see provenance.ts: only the new turn is a source). */
  evidence?: string;
  /** When it happened or will happen (a date-only event: the start of that day, user's zone). */
  occurredAt?: Date;
}

export interface ExistingMemory {
  id: string;
  content: string;
  layer: MemoryLayer;
}

export interface ExtractionInput {
  userMessage: string;
  reply: string;
  /** A few messages before the turn, oldest first. */
  priorMessages: ChatMessage[];
  messageTime: Date;
  /** The user's IANA zone (default UTC): "tomorrow" is resolved against the local date. */
  timeZone?: string;
  personaName: string;
  /** The most similar memories already stored (both layers), so they are not re-extracted. */
  existing: ExistingMemory[];
  /**
   * Called after each LLM call with the tokens the provider reported (null: none reported),
   * so the job can write them to the usage ledger (src/usage/meter.ts).
   */
  onUsage?: (usage: {
    model: string;
    inputTokens: number | null;
    outputTokens: number | null;
  }) => void;
}

export interface MemoryExtractor {
  /** "openrouter" | "offline" */
  readonly provider: string;
  extract(input: ExtractionInput): Promise<MemoryCandidate[]>;
}
