/**
 * The project's Voyage and OpenRouter HTTP fakes (test/fakes, real wire format, 127.0.0.1) as a
 * process of their own, for scripts/ci/production-smoke.sh: a production image has no local
 * embedder (an optional dependency it leaves out), so the smoke test runs the production
 * configuration — Voyage + OpenRouter — against these. Writes the server's environment
 * (`export KEY=VALUE` lines) to the file named by its argument once listening; stops on SIGTERM.
 *
 *   tsx scripts/ci/provider-fakes.ts <env-file>
 */
import { writeFileSync } from 'node:fs';
import { startFakes } from '../../bench/lib/fakes.js';

const out = process.argv[2];
if (!out) throw new Error('usage: tsx scripts/ci/provider-fakes.ts <env-file>');
const fakes = await startFakes({ memoriesPerExtraction: 1 });
writeFileSync(
  out,
  Object.entries(fakes.env)
    .map(([key, value]) => `export ${key}='${value}'\n`)
    .join(''),
);
const stop = () => void fakes.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
