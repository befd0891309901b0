import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codeCacheFile, writeCodeCache } from '../src/code-cache.js';

/**
 * The production launcher's loader (src/code-cache.ts): a CommonJS bundle evaluated through a
 * V8 code cache made beforehand, and evaluated plainly whenever the cache is missing, made
 * under other V8 flags, or damaged.
 */
let dir: string;
let bundle: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'code-cache-'));
  bundle = join(dir, 'server.cjs');
  // What the real bundle relies on: require (builtins and files beside it), module.exports,
  // __filename/__dirname, and a top level that only defines things.
  await writeFile(join(dir, 'beside.cjs'), 'module.exports = { answer: 42 };\n');
  await writeFile(
    bundle,
    [
      "const { basename } = require('node:path');",
      "const beside = require('./beside.cjs');",
      "function startServer() { return [basename(__filename), basename(__dirname), beside.answer].join(' '); }",
      'module.exports = { startServer };',
      '',
    ].join('\n'),
  );
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/**
 * Each load runs in a process of its own, like a machine starting: within one process V8 also
 * keeps compiled scripts in memory, which would hide whether the cache file was used.
 */
function loadInChild(nodeOptions = ''): { cached: boolean; result: string } {
  const code = `import { loadWithCodeCache } from './src/code-cache.ts';
const { exports, cached } = loadWithCodeCache(${JSON.stringify(bundle)});
process.stdout.write(JSON.stringify({ cached, result: exports.startServer() }));`;
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: nodeOptions },
  });
  expect(run.status, run.stderr).toBe(0);
  return JSON.parse(run.stdout);
}

function writeInChild(nodeOptions = ''): string {
  const made = spawnSync(process.execPath, ['--import', 'tsx', 'src/code-cache.ts', bundle], {
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: nodeOptions },
  });
  expect(made.status, made.stderr).toBe(0);
  return made.stdout;
}

describe('code cache', () => {
  it('evaluates the bundle without a cache', () => {
    const loaded = loadInChild();
    expect(loaded.cached).toBe(false);
    expect(loaded.result).toMatch(/^server\.cjs code-cache-\S+ 42$/);
  });

  it('uses the cache the build wrote for the same V8 configuration', () => {
    writeInChild();
    const loaded = loadInChild();
    expect(loaded).toEqual({ cached: true, result: expect.stringMatching(/ 42$/) });
  });

  it('keeps one cache per NODE_OPTIONS (V8 refuses a cache made under other flags)', () => {
    const heapFlags = '--max-old-space-size=160 --max-semi-space-size=4';
    expect(loadInChild(heapFlags).cached).toBe(false);
    expect(writeInChild(heapFlags)).toContain('.cache');
    expect(loadInChild(heapFlags)).toEqual({ cached: true, result: expect.stringMatching(/ 42$/) });
    // The first one is still there for a start without flags.
    expect(loadInChild().cached).toBe(true);
  });

  it('compiles as usual when the cache is damaged', async () => {
    await writeCodeCache(bundle);
    const file = codeCacheFile(bundle);
    expect(existsSync(file)).toBe(true);
    await writeFile(file, Buffer.from('not a V8 code cache'));
    expect(loadInChild()).toEqual({ cached: false, result: expect.stringMatching(/ 42$/) });
  });
});
