import type { OpenRouterOptions } from '../../src/providers/llm/openrouter.js';
import type { ChatRequest } from '../../src/providers/llm/types.js';
import type { OpenRouterFake } from '../fakes/openrouter-fake.js';
import { CLIENT_TIMEOUT_MS } from '../helpers/timeouts.js';

/**
 * A client configured for the fake: fast retries, one fallback model, and a timeout a healthy
 * answer never reaches on a busy machine (so only a 'hang' fault times out).
 */
export function openRouterOptions(
  fake: OpenRouterFake,
  overrides: Partial<OpenRouterOptions> = {},
): OpenRouterOptions {
  return {
    apiKey: fake.apiKey,
    baseUrl: fake.url,
    model: 'primary/model',
    fallbackModels: ['backup/model'],
    timeoutMs: CLIENT_TIMEOUT_MS,
    maxRetries: 2,
    retry: { baseMs: 1, capMs: 5 },
    ...overrides,
  };
}

/** A minimal chat request to Ada. */
export function chatRequest(content = 'Hi there', signal?: AbortSignal): ChatRequest {
  return {
    messages: [
      { role: 'system', content: 'You are Ada.' },
      { role: 'user', content },
    ],
    context: {
      personaName: 'Ada',
      personaTraits: {},
      userMessage: content,
      profile: [],
      relationship: [],
    },
    signal,
  };
}
