import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { LOCAL_EMBEDDING_MODEL, LocalEmbedder } from '../../src/providers/embeddings/local.js';
import { EMBEDDING_DIMENSIONS } from '../../src/providers/embeddings/types.js';

// The real model, loaded once for the file (~0.4 s, ~100 MB): nothing here is mocked.
const embedder = new LocalEmbedder();
afterAll(() => embedder.close());

const dot = (a: readonly number[], b: readonly number[]) =>
  a.reduce((sum, x, i) => sum + x * (b[i] ?? Number.NaN), 0);

/** Counts "model loaded" log lines, i.e. real loads, without reaching into the class. */
function countingLogger() {
  const counter = { loads: 0 };
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      if (chunk.toString().includes('embedding model loaded')) counter.loads += 1;
      done();
    },
  });
  return { counter, logger: pino({ level: 'info' }, stream) };
}

describe('LocalEmbedder', () => {
  it('identifies itself for the per-row model column', () => {
    expect(embedder.provider).toBe('local');
    expect(embedder.model).toBe(LOCAL_EMBEDDING_MODEL);
  });

  it('returns one plain 512-dim unit vector per input, in order', async () => {
    const texts = ['I am a nurse', 'I love pizza', '', '   ', '😀 ñ 中文'];
    const vectors = await embedder.embed(texts, 'document');
    expect(vectors).toHaveLength(texts.length);
    for (const vector of vectors) {
      expect(Array.isArray(vector)).toBe(true);
      expect(vector).toHaveLength(EMBEDDING_DIMENSIONS);
      expect(vector.every(Number.isFinite)).toBe(true);
      expect(Math.sqrt(dot(vector, vector))).toBeCloseTo(1, 12);
    }
    const [swappedB, swappedA] = await embedder.embed(['I love pizza', 'I am a nurse'], 'query');
    expect(swappedA).toEqual(vectors[0]);
    expect(swappedB).toEqual(vectors[1]);
  });

  it('is deterministic, whatever the batch size or batch neighbours', async () => {
    const texts = ['alpha', 'my dog is called Rex', 'we joked about puns', 'Lisbon', 'hiking'];
    const small = new LocalEmbedder({ batchSize: 2 });
    try {
      expect(await small.embed(texts, 'document')).toEqual(await embedder.embed(texts, 'query'));
      expect(await embedder.embed(texts, 'document')).toEqual(await embedder.embed(texts, 'query'));
    } finally {
      await small.close();
    }
  });

  it('places related sentences closer than unrelated ones', async () => {
    const [nurse, job, pizza, dog, pet, finance] = await embedder.embed(
      [
        "I'm a nurse",
        'What is my job? I work in a hospital as a nurse',
        'I love pizza',
        'I have a dog named Rex',
        'Tell me about my pet',
        'My job is in finance',
      ],
      'document',
    );
    // Measured: 0.76 vs 0.28, and 0.50 vs 0.17. The margins leave room for float noise only.
    expect(dot(nurse ?? [], job ?? [])).toBeGreaterThan(dot(nurse ?? [], pizza ?? []) + 0.2);
    expect(dot(dog ?? [], pet ?? [])).toBeGreaterThan(dot(dog ?? [], finance ?? []) + 0.2);
  });

  it('truncates very long inputs instead of spending seconds on them', async () => {
    // Functional, not timed (a wall-clock bound fails on a busy machine): an 88,000-char input
    // is embedded exactly as its first 4096 chars (the default maxChars), so its cost is that
    // of a 4096-char input whatever its length.
    const long = 'the quick brown fox jumps over the lazy dog '.repeat(2000);
    const [vector, prefix, longer] = await embedder.embed(
      [long, long.slice(0, 4096), long.slice(0, 4097)],
      'document',
    );
    expect(vector).toHaveLength(EMBEDDING_DIMENSIONS);
    expect(vector).toEqual(prefix);
    expect(longer).toEqual(prefix);
  });

  it('loads once under concurrent first calls, not at all for no input, again after close', async () => {
    const { counter, logger } = countingLogger();
    const fresh = new LocalEmbedder({ logger });
    expect(await fresh.embed([], 'query')).toEqual([]);
    expect(counter.loads).toBe(0);
    const results = await Promise.all([
      fresh.embed(['one'], 'query'),
      fresh.embed(['two'], 'query'),
      fresh.warmUp(),
    ]);
    expect(results[0]?.[0]).toHaveLength(EMBEDDING_DIMENSIONS);
    expect(counter.loads).toBe(1);
    await fresh.close();
    await fresh.embed(['three'], 'query');
    expect(counter.loads).toBe(2);
    await fresh.close();
  });
});
