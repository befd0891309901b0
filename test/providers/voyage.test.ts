import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EmbeddingError } from '../../src/providers/embeddings/types.js';
import {
  VoyageEmbedder,
  type VoyageEmbedderOptions,
} from '../../src/providers/embeddings/voyage.js';
import { fakeEmbedding, startVoyageFake, type VoyageFake } from '../fakes/voyage-fake.js';
import { CLIENT_TIMEOUT_MS } from '../helpers/timeouts.js';

let fake: VoyageFake;
beforeEach(async () => {
  fake = await startVoyageFake();
});
afterEach(async () => {
  await fake.close();
});

function embedder(overrides: Partial<VoyageEmbedderOptions> = {}): VoyageEmbedder {
  return new VoyageEmbedder({
    apiKey: fake.apiKey,
    model: 'voyage-3.5-lite',
    baseUrl: fake.url,
    timeoutMs: CLIENT_TIMEOUT_MS, // only a 'hang' fault reaches it, however busy the machine
    maxRetries: 2,
    retry: { baseMs: 1, capMs: 5 },
    ...overrides,
  });
}

async function embedError(e: VoyageEmbedder): Promise<EmbeddingError> {
  const error = await e.embed(['hello'], 'document').catch((err: unknown) => err);
  expect(error).toBeInstanceOf(EmbeddingError);
  return error as EmbeddingError;
}

const cosine = (a: number[], b: number[]) => a.reduce((sum, x, i) => sum + x * (b[i] ?? 0), 0);

describe('VoyageEmbedder', () => {
  it('returns one 512-dim vector per input and sends the documented body', async () => {
    const e = embedder();
    const [a, b, c] = await e.embed(['I love hiking', 'I love hiking trips', 'tax forms'], 'query');
    expect([a, b, c].map((v) => v?.length)).toEqual([512, 512, 512]);
    expect(cosine(a ?? [], b ?? [])).toBeGreaterThan(cosine(a ?? [], c ?? []));
    expect(fake.requests[0]?.headers.authorization).toBe(`Bearer ${fake.apiKey}`);
    expect(fake.requests[0]?.body).toEqual({
      input: ['I love hiking', 'I love hiking trips', 'tax forms'],
      model: 'voyage-3.5-lite',
      input_type: 'query',
      truncation: true,
      output_dimension: 512,
    });
    expect(e.provider).toBe('voyage');
    expect(e.model).toBe('voyage-3.5-lite');
  });

  it('makes no request for no input', async () => {
    expect(await embedder().embed([], 'document')).toEqual([]);
    expect(fake.requests).toHaveLength(0);
  });

  it('splits more than 128 inputs into batches and keeps the order', async () => {
    const texts = Array.from({ length: 300 }, (_, i) => `memory number ${i}`);
    const vectors = await embedder().embed(texts, 'document');
    expect(fake.requests.map((r) => r.body?.input.length)).toEqual([128, 128, 44]);
    expect(fake.requests.every((r) => r.body?.input_type === 'document')).toBe(true);
    expect(vectors).toHaveLength(300);
    expect(vectors[299]).toEqual(fakeEmbedding('memory number 299', 512));
  });

  it('sorts data by index', async () => {
    await fake.close();
    fake = await startVoyageFake({ reverseData: true });
    const vectors = await embedder().embed(['alpha', 'beta', 'gamma'], 'document');
    expect(vectors).toEqual(['alpha', 'beta', 'gamma'].map((t) => fakeEmbedding(t, 512)));
  });

  it.each([
    ['voyage-3.5-lite', 512],
    ['voyage-4-lite', 512],
    ['voyage-3-large', 512],
    ['voyage-3-lite', undefined],
  ])('sends output_dimension for %s: %s', async (model, expected) => {
    await embedder({ model }).embed(['x'], 'document');
    expect(fake.requests[0]?.body?.output_dimension).toBe(expected);
  });

  it('rejects vectors of the wrong size without retrying (voyage-3 is fixed at 1024)', async () => {
    const error = await embedError(embedder({ model: 'voyage-3' }));
    expect(error.retryable).toBe(false);
    expect(error.message).toMatch(/1024-dimensional/);
    expect(fake.requests).toHaveLength(1);

    fake.setFaults({ queue: ['wrong-dimension'] });
    expect((await embedError(embedder())).retryable).toBe(false);
  });

  it.each([
    ['seconds', () => '2', 2000, 2000],
    ['an HTTP date', () => new Date(Date.now() + 4000).toUTCString(), 2000, 4000],
    ['too long (capped)', () => '3600', 20_000, 20_000],
  ])('waits for Retry-After given as %s on 429, then succeeds', async (_, header, min, max) => {
    const waits: number[] = [];
    fake.setFaults({ queue: ['429'], retryAfter: header() });
    const sleep = async (ms: number) => void waits.push(ms);
    await embedder({ retry: { sleep } }).embed(['x'], 'document');
    expect(waits).toHaveLength(1);
    expect(waits[0]).toBeGreaterThanOrEqual(min);
    expect(waits[0]).toBeLessThanOrEqual(max);
    expect(fake.requests).toHaveLength(2);
  });

  it('retries 500 and 503, then succeeds', async () => {
    fake.setFaults({ queue: ['500', '503'] });
    expect(await embedder().embed(['x'], 'document')).toHaveLength(1);
    expect(fake.faultsServed).toBe(2);
  });

  it('times out a hanging request and retries it', async () => {
    fake.setFaults({ queue: ['hang'] });
    expect(await embedder().embed(['x'], 'document')).toHaveLength(1);
    expect(fake.requests).toHaveLength(2);
  });

  it('retries malformed JSON within the same budget', async () => {
    fake.setFaults({ queue: ['malformed-json'] });
    expect(await embedder().embed(['x'], 'document')).toHaveLength(1);
    fake.setFaults({ queue: ['malformed-json', 'malformed-json', 'malformed-json'] });
    const error = await embedError(embedder());
    expect(error.message).toMatch(/malformed JSON.*\(3 attempts\)/);
    expect(error.retryable).toBe(true);
  });

  it('gives up after maxRetries with a retryable error', async () => {
    fake.setFaults({ probability: 1, kinds: ['500', '503'], seed: 7 });
    const error = await embedError(embedder({ maxRetries: 3 }));
    expect(error.retryable).toBe(true);
    expect(fake.requests).toHaveLength(4);
  });

  it('never puts the API key in errors or logs', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'trace' }, { write: (line: string) => void lines.push(line) });
    const secret = 'sk-very-secret-key';
    const error = await embedError(embedder({ apiKey: secret, logger }));
    expect(error.retryable).toBe(false);
    expect(error.message).toContain('HTTP 401');
    expect(error.message).toContain('[redacted]');
    expect(error.message).not.toContain(secret);
    expect(fake.requests).toHaveLength(1); // 4xx is not retried

    fake.setFaults({ queue: ['hang', 'hang', 'hang'] });
    const timeout = await embedError(embedder({ apiKey: fake.apiKey, logger }));
    expect(timeout.message).toMatch(/timed out/);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.join('\n')).not.toContain(secret);
    expect(lines.join('\n')).not.toContain(fake.apiKey);
  });
});
