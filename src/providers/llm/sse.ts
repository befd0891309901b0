import { z } from 'zod';
import { StreamBodyError } from '../http.js';

/**
 * The data of each server-sent event, per the SSE spec: comments (OpenRouter's
 * `: OPENROUTER PROCESSING` keep-alives) and other fields are skipped, and the data lines of one
 * event are joined with "\n". Chunks may split lines, CRLFs and UTF-8 characters anywhere.
 */
export async function* sseData(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = '';
  let data: string[] = [];
  /** Consumes the buffer's complete lines; returns the events they finish. */
  const takeEvents = (atEnd: boolean): string[] => {
    // A CR at the end of the buffer may be the first half of a CRLF still in transit.
    const lineEnd = atEnd ? /\r\n|\r|\n/ : /\r\n|\r(?!$)|\n/;
    const events: string[] = [];
    for (;;) {
      const match = lineEnd.exec(buffer);
      if (!match) return events;
      const line = buffer.slice(0, match.index);
      buffer = buffer.slice(match.index + match[0].length);
      if (line === '' && data.length > 0) {
        events.push(data.join('\n'));
        data = [];
      } else if (line === 'data' || line.startsWith('data:')) {
        data.push(line.slice(5).replace(/^ /, ''));
      }
    }
  };
  for await (const chunk of chunks) {
    buffer += decoder.decode(chunk, { stream: true });
    yield* takeEvents(false);
  }
  buffer += decoder.decode();
  yield* takeEvents(true);
  // A last event missing only its blank line is whole; an unterminated last line was cut off.
  if (data.length > 0) yield data.join('\n');
}

const chunkSchema = z.object({
  model: z.string().nullish(),
  choices: z
    .array(
      z.object({
        delta: z.object({ content: z.string().nullish() }).nullish(),
        finish_reason: z.string().nullish(),
      }),
    )
    .nullish(),
  usage: z
    .object({ prompt_tokens: z.number().nullish(), completion_tokens: z.number().nullish() })
    .nullish(),
  error: z
    .object({ code: z.union([z.number(), z.string()]).nullish(), message: z.string().nullish() })
    .nullish(),
});

export interface StreamedReply {
  /** Every content delta concatenated, untrimmed. */
  content: string;
  model: string | null;
  finishReason: string | null;
  promptTokens: number | null;
  completionTokens: number | null;
}

/**
 * Reads an OpenAI-compatible chat completion stream. `onText` gets the reply as it arrives,
 * trimmed like a whole completion: leading whitespace is dropped and trailing whitespace held
 * back until more text follows, so the pieces add up to exactly `content.trim()` and a
 * whitespace-only reply passes nothing on (it is an empty reply, which another model may fix).
 * Throws StreamBodyError on a malformed chunk, an error event, or a stream that stops before
 * its end (neither a finish_reason nor [DONE]).
 */
export async function readChatStream(
  chunks: AsyncIterable<Uint8Array>,
  onText: (text: string) => void,
): Promise<StreamedReply> {
  const reply: StreamedReply = {
    content: '',
    model: null,
    finishReason: null,
    promptTokens: null,
    completionTokens: null,
  };
  let held = '';
  let passedOn = false;
  let done = false;
  for await (const data of sseData(chunks)) {
    if (data === '[DONE]') {
      done = true;
      break;
    }
    const chunk = parseChunk(data);
    const choice = chunk.choices?.[0];
    if (chunk.error || choice?.finish_reason === 'error') {
      const { code, message } = chunk.error ?? {};
      throw new StreamBodyError(`error event: ${code ?? 'no code'} ${message ?? 'no message'}`);
    }
    reply.model ??= chunk.model || null;
    reply.finishReason = choice?.finish_reason ?? reply.finishReason;
    if (chunk.usage) {
      reply.promptTokens = chunk.usage.prompt_tokens ?? null;
      reply.completionTokens = chunk.usage.completion_tokens ?? null;
    }
    const text = choice?.delta?.content;
    if (!text) continue;
    reply.content += text;
    const pending = held + text;
    const body = pending.trimEnd();
    if (body === '') {
      held = passedOn ? pending : '';
      continue;
    }
    held = pending.slice(body.length);
    onText(passedOn ? body : body.trimStart());
    passedOn = true;
  }
  if (!done && reply.finishReason === null) {
    throw new StreamBodyError('stream ended before the reply was complete');
  }
  return reply;
}

function parseChunk(data: string): z.infer<typeof chunkSchema> {
  let json: unknown;
  try {
    json = JSON.parse(data);
  } catch {
    throw new StreamBodyError(`malformed JSON chunk (${data.length} characters)`);
  }
  const parsed = chunkSchema.safeParse(json);
  // The chunk itself may carry reply text, which never goes into errors or logs.
  if (!parsed.success)
    throw new StreamBodyError(`unexpected chunk shape (${data.length} characters)`);
  return parsed.data;
}
