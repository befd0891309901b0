import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OpenRouterChatModel, type OpenRouterOptions } from '../../src/providers/llm/openrouter.js';
import { LlmError } from '../../src/providers/llm/types.js';
import { type OpenRouterFake, startOpenRouterFake } from '../fakes/openrouter-fake.js';
import { chatRequest, openRouterOptions } from './openrouter-client.js';

let fake: OpenRouterFake;
beforeEach(async () => {
  fake = await startOpenRouterFake();
});
afterEach(async () => {
  await fake.close();
});

const options = (overrides: Partial<OpenRouterOptions> = {}) => openRouterOptions(fake, overrides);

const model = (overrides: Partial<OpenRouterOptions> = {}) =>
  new OpenRouterChatModel(options(overrides));

const request = chatRequest;

async function failure(promise: Promise<unknown>): Promise<LlmError> {
  const error = await promise.catch((err: unknown) => err);
  expect(error).toBeInstanceOf(LlmError);
  return error as LlmError;
}

const models = () => fake.requests.map((r) => r.body?.model);

describe('OpenRouterChatModel', () => {
  it('completes a chat and records usage', async () => {
    const llm = model();
    const completion = await llm.complete(request('Hi there'));
    expect(completion).toEqual({
      content: 'echo: Hi there',
      model: 'primary/model',
      promptTokens: 5,
      completionTokens: 3,
    });
    expect(llm.provider).toBe('openrouter');
    const sent = fake.requests[0];
    expect(sent?.body).toEqual({ model: 'primary/model', messages: request().messages });
    expect(sent?.headers.authorization).toBe(`Bearer ${fake.apiKey}`);
    expect(sent?.headers['x-title']).toBeUndefined();
    expect(sent?.headers['http-referer']).toBeUndefined();
  });

  it('sends attribution headers only when configured', async () => {
    await model({ appName: 'Companion', appUrl: 'https://example.com' }).complete(request());
    expect(fake.requests[0]?.headers['x-title']).toBe('Companion');
    expect(fake.requests[0]?.headers['http-referer']).toBe('https://example.com');
  });

  it('chat() overrides the model and asks for JSON', async () => {
    fake.setResponder((body) => JSON.stringify({ memories: [body.messages.length] }));
    const completion = await model().chat([{ role: 'user', content: 'extract' }], {
      model: 'extractor/model',
      responseFormat: 'json_object',
      temperature: 0,
      maxTokens: 300,
    });
    expect(JSON.parse(completion.content)).toEqual({ memories: [1] });
    expect(fake.requests[0]?.body).toMatchObject({
      model: 'extractor/model',
      response_format: { type: 'json_object' },
      temperature: 0,
      max_tokens: 300,
    });
  });

  it('falls back at once when the primary model is unknown (404 is not retried)', async () => {
    fake.setFaults({ unknownModels: ['primary/model'] });
    const completion = await model().complete(request());
    expect(completion.model).toBe('backup/model');
    expect(models()).toEqual(['primary/model', 'backup/model']);
  });

  it('falls back after the primary exhausts its retries', async () => {
    fake.setFaults({ queue: ['500', '503', '500'] });
    expect((await model().complete(request())).model).toBe('backup/model');
    expect(models()).toEqual(['primary/model', 'primary/model', 'primary/model', 'backup/model']);
  });

  it('falls back on empty content', async () => {
    fake.setFaults({ queue: ['empty-content'] });
    expect((await model().complete(request())).model).toBe('backup/model');
    fake.setFaults({ queue: ['empty-content'] });
    const error = await failure(model({ fallbackModels: [] }).complete(request()));
    expect(error.message).toMatch(/empty content/);
  });

  it('retries 429 honouring Retry-After, hangs and malformed JSON on the same model', async () => {
    const waits: number[] = [];
    const sleep = async (ms: number) => void waits.push(ms);
    fake.setFaults({ queue: ['429', 'hang', 'malformed-json'], retryAfter: '1' });
    const llm = model({ maxRetries: 3, retry: { sleep, random: () => 0.5 } });
    expect((await llm.complete(request())).model).toBe('primary/model');
    expect(waits).toEqual([1000, 250, 500]); // Retry-After, then half of 500 and 1000 ms
    expect(fake.faultsServed).toBe(3);
  });

  it('reports a retryable error when every model fails transiently', async () => {
    fake.setFaults({ probability: 1, kinds: ['503'] });
    const error = await failure(model({ maxRetries: 1 }).complete(request()));
    expect(error.retryable).toBe(true);
    expect(error.message).toMatch(/all models failed.*primary\/model.*backup\/model/);
    expect(fake.requests).toHaveLength(4);
  });

  it('reports a non-retryable error when every model is unknown', async () => {
    fake.setFaults({ unknownModels: ['primary/model', 'backup/model'] });
    expect((await failure(model().complete(request()))).retryable).toBe(false);
  });

  it('does not fall back on a bad key, and never shows the key', async () => {
    const secret = 'sk-or-v1-very-secret';
    const error = await failure(model({ apiKey: secret }).complete(request()));
    expect(error.retryable).toBe(false);
    expect(error.message).toContain('HTTP 401');
    expect(error.message).not.toContain(secret);
    expect(fake.requests).toHaveLength(1);
  });

  it('stops waiting for a retry when the caller aborts', async () => {
    // Retry-After 20 s (the longest honoured): returning well before it proves the wait stopped,
    // however slow the machine.
    fake.setFaults({ queue: ['429'], retryAfter: '20' });
    const started = Date.now();
    const llm = new OpenRouterChatModel({ ...options(), retry: undefined });
    const error = await failure(llm.complete(request('x', AbortSignal.timeout(50))));
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(error.message).toMatch(/aborted/);
    expect(models()).toEqual(['primary/model']);
  });

  it('stops promptly without fallback when the caller aborts', async () => {
    // The fake never answers and the client's own timeout is far away: only the abort can end it.
    fake.setFaults({ queue: ['hang'] });
    const started = Date.now();
    const llm = model({ timeoutMs: 40_000 });
    const error = await failure(llm.complete(request('x', AbortSignal.timeout(50))));
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(error.message).toMatch(/aborted/);
    expect(models()).toEqual(['primary/model']);
  });
});
