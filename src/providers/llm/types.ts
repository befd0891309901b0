export type ChatRole = 'system' | 'user' | 'assistant';

export interface ChatMessage {
  role: ChatRole;
  content: string;
}

export interface RecalledFact {
  content: string;
  score: number;
  /** When it was told (and happens), in the user's calendar: "told 3 weeks ago, Tue 10 Nov". */
  told?: string;
}

/**
 * A chat completion request. `messages` is the assembled prompt that a hosted model reads;
 * `context` carries the same information structured, for the offline companion, which cannot
 * read prose.
 */
export interface ChatRequest {
  messages: ChatMessage[];
  context: {
    personaName: string;
    personaTraits: Record<string, unknown>;
    userMessage: string;
    profile: RecalledFact[];
    relationship: RecalledFact[];
    /** Calendar days since the user's previous message to this persona; absent: first talk. */
    daysSinceLastTalk?: number;
    /** A due follow-up to ask about (the prompt carries it too). */
    followUp?: { content: string; when: string | null };
  };
  /** Abort the call (timeouts, client gone). */
  signal?: AbortSignal;
}

export interface ChatCompletion {
  content: string;
  /** The model that actually answered (after fallbacks). */
  model: string;
  promptTokens: number | null;
  completionTokens: number | null;
}

export interface ChatModel {
  /** "openrouter" | "offline": shown in logs and to admins. */
  readonly provider: string;
  complete(request: ChatRequest): Promise<ChatCompletion>;
  /**
   * Same as complete, but calls onDelta with each piece of reply text as it arrives. Resolves
   * with the whole completion (content = the concatenated deltas, trimmed like complete's).
   * Retries and fallback models are only used before the first delta was delivered; a failure
   * after that rejects with a retryable LlmError (the caller will not persist partial text).
   */
  stream(request: ChatRequest, onDelta: (text: string) => void): Promise<ChatCompletion>;
}

export class LlmError extends Error {
  override readonly name = 'LlmError';
  constructor(
    message: string,
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
