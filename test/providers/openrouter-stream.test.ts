import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OpenRouterChatModel, type OpenRouterOptions } from '../../src/providers/llm/openrouter.js';
import { sseData } from '../../src/providers/llm/sse.js';
import { LlmError } from '../../src/providers/llm/types.js';
import { type OpenRouterFake, startOpenRouterFake } from '../fakes/openrouter-fake.js';
import { CLIENT_TIMEOUT_MS, NEVER } from '../helpers/timeouts.js';
import { chatRequest, openRouterOptions } from './openrouter-client.js';

let fake: OpenRouterFake;
beforeEach(async () => {
  fake = await startOpenRouterFake();
});
afterEach(async () => {
  await fake.close();
});

const model = (overrides: Partial<OpenRouterOptions> = {}) =>
  new OpenRouterChatModel(openRouterOptions(fake, overrides));

const request = chatRequest;

/** Streams a reply, keeping the deltas and the outcome (completion or LlmError). */
async function stream(llm: OpenRouterChatModel, req = request()) {
  const deltas: string[] = [];
  const outcome = await llm.stream(req, (text) => deltas.push(text)).catch((err: unknown) => err);
  return { deltas, outcome };
}

function asError(outcome: unknown): LlmError {
  expect(outcome).toBeInstanceOf(LlmError);
  return outcome as LlmError;
}

const models = () => fake.requests.map((r) => r.body?.model);
/** The first delta at once, then silence until the client gives up (a true hang). */
const silentAfterFirstDelta = (_: unknown, index: number) => (index >= 1 ? NEVER : 0);

describe('OpenRouterChatModel.stream', () => {
  it('delivers the deltas in order and resolves with the whole completion', async () => {
    const { deltas, outcome } = await stream(model());
    expect(deltas).toEqual(['echo:', ' Hi', ' there']);
    expect(outcome).toEqual({
      content: 'echo: Hi there',
      model: 'primary/model',
      promptTokens: 5,
      completionTokens: 3,
    });
    const sent = fake.requests[0];
    expect(sent?.body).toMatchObject({ stream: true, stream_options: { include_usage: true } });
    expect(sent?.headers.accept).toBe('text/event-stream');
  });

  it('trims the reply like complete, so the deltas add up to the content', async () => {
    fake.setResponder(() => '  Hello  world \n ');
    const { deltas, outcome } = await stream(model());
    expect(deltas.join('')).toBe('Hello  world');
    expect(outcome).toMatchObject({ content: 'Hello  world' });
  });

  it('retries 429 and 503 before the stream starts, without repeating deltas', async () => {
    fake.setFaults({ queue: ['429', '503'] });
    const { deltas, outcome } = await stream(model());
    expect(outcome).toMatchObject({ content: 'echo: Hi there', model: 'primary/model' });
    expect(deltas.join('')).toBe('echo: Hi there');
    expect(models()).toEqual(['primary/model', 'primary/model', 'primary/model']);
  });

  it('falls back when the primary fails before streaming', async () => {
    fake.setFaults({ queue: ['500', '500', '500'] });
    const { deltas, outcome } = await stream(model());
    expect(outcome).toMatchObject({ model: 'backup/model' });
    expect(deltas).toEqual(['echo:', ' Hi', ' there']);
    expect(models()).toEqual(['primary/model', 'primary/model', 'primary/model', 'backup/model']);

    fake.requests.length = 0;
    fake.setFaults({ unknownModels: ['primary/model'] });
    expect((await stream(model())).outcome).toMatchObject({ model: 'backup/model' });
    expect(models()).toEqual(['primary/model', 'backup/model']);
  });

  it('falls back on a reply that is empty or only whitespace', async () => {
    fake.setResponder((body) => (body.model === 'primary/model' ? ' \n ' : 'fine'));
    const { deltas, outcome } = await stream(model({ maxRetries: 0 }));
    expect(deltas).toEqual(['fine']);
    expect(outcome).toMatchObject({ model: 'backup/model' });

    fake.setFaults({ queue: ['empty-content'] });
    const empty = await stream(model({ fallbackModels: [] }));
    expect(asError(empty.outcome).message).toMatch(/empty content \(finish_reason stop\)/);
  });

  it.each(['stream-cut', 'stream-error'] as const)(
    '%s after a delta: retryable error, no retry and no fallback',
    async (fault) => {
      fake.setFaults({ queue: [fault] });
      const { deltas, outcome } = await stream(model());
      const error = asError(outcome);
      expect(error.retryable).toBe(true);
      expect(error.message).toMatch(/after part of the reply was delivered/);
      if (fault === 'stream-error') expect(error.message).toMatch(/502 Provider returned error/);
      expect(deltas).toEqual(['echo:']);
      expect(models()).toEqual(['primary/model']);
    },
  );

  it('retries a malformed chunk that came before any delta', async () => {
    fake.setFaults({ queue: ['malformed-json'] });
    expect((await stream(model())).outcome).toMatchObject({ model: 'primary/model' });
    expect(models()).toEqual(['primary/model', 'primary/model']);

    fake.setFaults({ queue: ['malformed-json'] });
    const { outcome } = await stream(model({ maxRetries: 0, fallbackModels: [] }));
    const error = asError(outcome);
    expect(error.retryable).toBe(true);
    expect(error.message).toMatch(/malformed JSON chunk/);
  });

  it('times out a stream that goes quiet after a delta', async () => {
    fake.setDeltaDelay(silentAfterFirstDelta);
    const started = Date.now();
    const { deltas, outcome } = await stream(model());
    const error = asError(outcome);
    // The idle timeout ended it, well before the whole-stream deadline (4 idle timeouts).
    expect(Date.now() - started).toBeLessThan(CLIENT_TIMEOUT_MS * 4);
    expect(error.retryable).toBe(true);
    expect(error.message).toMatch(new RegExp(`no data for ${CLIENT_TIMEOUT_MS} ms`));
    expect(deltas).toEqual(['echo:']);
    expect(models()).toEqual(['primary/model']);
  });

  it('treats silence before the first delta, or no answer at all, as retryable', async () => {
    fake.setDeltaDelay((body) => (body.model === 'primary/model' ? NEVER : 0));
    fake.setFaults({ queue: ['hang'] });
    const { deltas, outcome } = await stream(model({ maxRetries: 1 }));
    expect(outcome).toMatchObject({ model: 'backup/model' });
    expect(deltas.join('')).toBe('echo: Hi there');
    expect(fake.requests.map((r) => [r.body?.model, r.fault])).toEqual([
      ['primary/model', 'hang'],
      ['primary/model', null],
      ['backup/model', null],
    ]);
  });

  it('stops promptly mid-stream when the caller aborts, without retry', async () => {
    // The fake goes silent and the client's own timeout is far away: only the abort can end it.
    fake.setDeltaDelay(silentAfterFirstDelta);
    const controller = new AbortController();
    const llm = model({ timeoutMs: 40_000 });
    const started = Date.now();
    const deltas: string[] = [];
    const outcome = await llm
      .stream(request('x', controller.signal), (text) => {
        deltas.push(text);
        setTimeout(() => controller.abort(), 20);
      })
      .catch((err: unknown) => err);
    const error = asError(outcome);
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(error.retryable).toBe(false);
    expect(error.message).toMatch(/aborted/);
    expect(deltas).toEqual(['echo:']);
    expect(models()).toEqual(['primary/model']);
  });

  it('does not start when the signal is already aborted', async () => {
    const { outcome } = await stream(model(), request('x', AbortSignal.abort()));
    expect(asError(outcome).retryable).toBe(false);
    expect(models()).toEqual([]);
  });

  it('passes on an error thrown by onDelta instead of retrying', async () => {
    const boom = new Error('subscriber gone');
    const outcome = await model()
      .stream(request(), () => {
        throw boom;
      })
      .catch((err: unknown) => err);
    expect(outcome).toBe(boom);
    expect(models()).toEqual(['primary/model']);
  });

  it('never shows the API key, and does not fall back on a bad key', async () => {
    const secret = 'sk-or-v1-very-secret';
    const { outcome } = await stream(model({ apiKey: secret }));
    const error = asError(outcome);
    expect(error.retryable).toBe(false);
    expect(error.message).toContain('HTTP 401');
    expect(error.message).not.toContain(secret);
    expect(fake.requests).toHaveLength(1);
  });
});

async function* bytes(text: string, size: number): AsyncGenerator<Uint8Array> {
  const all = new TextEncoder().encode(text);
  for (let i = 0; i < all.length; i += size) yield all.slice(i, i + size);
}

async function events(text: string, size = 1): Promise<string[]> {
  const out: string[] = [];
  for await (const data of sseData(bytes(text, size))) out.push(data);
  return out;
}

describe('sseData', () => {
  const wire =
    ': OPENROUTER PROCESSING\r\n\r\n' +
    'event: message\r\ndata: {"a":"héllo 👋"}\r\n\r\n' +
    ': OPENROUTER PROCESSING\n\n' +
    'data:first\ndata: second\nid: 7\n\n' +
    'data: [DONE]\r\r';

  it('skips comments and joins data lines, however the bytes are split', async () => {
    const expected = ['{"a":"héllo 👋"}', 'first\nsecond', '[DONE]'];
    for (const size of [1, 2, 3, 7, wire.length]) {
      expect(await events(wire, size)).toEqual(expected);
    }
  });

  it('keeps a last event missing its blank line, but not a cut-off line', async () => {
    expect(await events('data: a\n\ndata: b\n')).toEqual(['a', 'b']);
    expect(await events('data: a\n\ndata: {"cut')).toEqual(['a']);
  });
});
