import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { envTable } from '../scripts/env-table.js';
import { parseEnv } from '../src/env.js';

describe('configuration', () => {
  it("README's table matches src/env.ts (run `npm run generate` if this fails)", () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    expect(readme).toContain(envTable());
  });

  it('zero config parses to the offline, embedded defaults', () => {
    const env = parseEnv({});
    expect(env).toMatchObject({
      EMBEDDINGS_PROVIDER: 'local',
      LLM_PROVIDER: 'offline',
      RECALL_PROFILE_K: 3,
      RECALL_RELATIONSHIP_K: 8,
    });
    expect(env.DATABASE_URL).toBeUndefined();
  });

  it('fails loudly on bad values and missing provider keys', () => {
    expect(() => parseEnv({ PORT: 'eighty' })).toThrow(/PORT/);
    expect(() => parseEnv({ DATABASE_URL: 'mysql://x' })).toThrow(/DATABASE_URL/);
    expect(() => parseEnv({ EMBEDDINGS_PROVIDER: 'voyage' })).toThrow(/VOYAGE_API_KEY/);
    expect(() => parseEnv({ LLM_PROVIDER: 'openrouter' })).toThrow(/OPENROUTER_API_KEY/);
    expect(() => parseEnv({ NODE_ENV: 'production' })).toThrow(/JWT_SECRET/);
    expect(() => parseEnv({ JWT_SECRET: 'short' })).toThrow(/JWT_SECRET/);
  });

  it('treats empty strings as unset', () => {
    expect(parseEnv({ DATABASE_URL: '', PORT: '' }).PORT).toBe(4000);
  });
});
