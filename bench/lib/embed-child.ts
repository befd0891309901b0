/**
 * One LocalEmbedder configuration in a fresh process (its WASM heap keeps its high-water mark
 * for the life of the process, so RSS per batch size needs a process each). Prints one JSON
 * line: model load time, texts/s over the given texts, and RSS before/after.
 *   node --import tsx bench/lib/embed-child.ts <batchSize> <textsJsonFile>
 */
import { readFileSync } from 'node:fs';
import { LocalEmbedder } from '../../src/providers/embeddings/local.js';
import { rssMiB } from './proc.js';

const batchSize = Number(process.argv[2]);
const texts = JSON.parse(readFileSync(process.argv[3] as string, 'utf8')) as string[];
const rssStart = rssMiB(process.pid);
const embedder = new LocalEmbedder({ batchSize });
let t = performance.now();
await embedder.warmUp();
const loadMs = performance.now() - t;
const rssLoaded = rssMiB(process.pid);
await embedder.embed(texts.slice(0, Math.min(8, texts.length)), 'document'); // first-call warm-up
t = performance.now();
await embedder.embed(texts, 'document');
const ms = performance.now() - t;
process.stdout.write(
  `${JSON.stringify({
    batchSize,
    texts: texts.length,
    loadMs: Math.round(loadMs),
    textsPerSecond: Math.round((texts.length / ms) * 10000) / 10,
    rssMiB: {
      start: Math.round(rssStart),
      loaded: Math.round(rssLoaded),
      after: Math.round(rssMiB(process.pid)),
    },
  })}\n`,
);
await embedder.close();
