import type { OpenRouterOptions } from '../../src/providers/llm/openrouter.js';
import type { ChatRequest } from '../../src/providers/llm/types.js';
import type { OpenRouterFake } from '../fakes/openrouter-fake.js';

/** A client configured for the fake: fast timeouts and retries, one fallback model. */
export function openRouterOptions(
  fake: OpenRouterFake,
  overrides: Partial<OpenRouterOptions> = {},
): OpenRouterOptions {
  return {
    apiKey: fake.apiKey,
    baseUrl: fake.url,
    model: 'primary/model',
    fallbackModels: ['backup/model'],
    timeoutMs: 200,
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
