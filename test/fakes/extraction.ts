import { buildExtractionMessages } from '../../src/memory/extraction-prompt.js';
import type { ChatBody } from './openrouter-fake.js';

/**
 * The extractor's system prompt, taken from the code that writes it, so a fake model tells
 * extraction calls from chat calls however the prompt's wording evolves.
 */
export const EXTRACTION_SYSTEM_PROMPT =
  buildExtractionMessages({
    userMessage: '',
    reply: '',
    priorMessages: [],
    messageTime: new Date(0),
    personaName: '',
    existing: [],
  })[0]?.content ?? '';

export const isExtractionRequest = (body: ChatBody): boolean =>
  body.messages[0]?.content === EXTRACTION_SYSTEM_PROMPT;
