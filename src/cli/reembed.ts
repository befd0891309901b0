import {
  countPending,
  planReembed,
  type ReembedResult,
  reembedMemories,
} from '../memory/reembed.js';
import type { Embedder } from '../providers/embeddings/types.js';
import { createProviders } from '../providers/index.js';
import {
  type CliDeps,
  CliError,
  type CliIo,
  cliEnv,
  guarded,
  isEntryPoint,
  parseCliArgs,
  runCli,
  usageError,
  withDatabase,
} from './common.js';
import { ProgressBar } from './progress.js';

const USAGE = `Usage: npm run reembed [-- --batch 64 --dry-run]

Re-embeds every memory whose vector was made by another embedding model than the configured
one (EMBEDDINGS_PROVIDER, VOYAGE_MODEL, ...), in batches of --batch rows, each batch written in
one transaction. Safe to interrupt and rerun: it continues with the rows still to migrate.

While it runs, memories not yet migrated are not recalled (search never compares vectors of
two models). Configure the server with the new model first, so new memories use it too.

Options:
  --batch <n>  rows per batch, 1-1000 (default 64)
  --dry-run    show what would be migrated, embed and write nothing
  -h, --help   this help

Ctrl-C once: finish the batch in flight, then stop. Twice: drop that batch (nothing of it is
written) and stop at once. Exit code 130 when stopped early, 1 on errors.

Database: DATABASE_URL, or the embedded database in DATA_DIR (stop the server first).`;

const HINT = 'Run `npm run reembed -- --help` for usage.';

/**
 * One Ctrl-C can arrive twice: the terminal signals the whole process group, and `npm run`
 * forwards the signal to its child as well. A second signal this soon is that echo, not a
 * second keypress.
 */
const SIGNAL_REPEAT_MS = 1000;

export interface ReembedDeps extends CliDeps {
  embedder?: Embedder;
}

function parseBatch(value: string | undefined): number {
  if (value === undefined) return 64;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 1000) {
    throw usageError(`--batch must be an integer from 1 to 1000, got "${value}"`);
  }
  return n;
}

export async function reembedCommand(
  argv: string[],
  io: CliIo,
  deps: ReembedDeps = {},
): Promise<number> {
  return guarded(io, HINT, async () => {
    const { values, positionals } = parseCliArgs(argv, {
      batch: { type: 'string' },
      'dry-run': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    });
    if (values.help) {
      io.stdout.write(`${USAGE}\n`);
      return 0;
    }
    if (positionals.length > 0) throw usageError(`unexpected argument "${positionals[0]}"`);
    const batchSize = parseBatch(values.batch);
    const env = deps.env ?? cliEnv();

    return withDatabase(deps, env, io, async (db, logger) => {
      // Constructing an embedder loads nothing: the local model loads on the first embed, so a
      // dry run stays instant.
      const embedder = deps.embedder ?? createProviders(env, logger).embedder;
      try {
        const plan = await planReembed(db.prisma, embedder.model);
        const all = plan.byModel.reduce((sum, m) => sum + m.count, 0);
        const models = plan.byModel.map((m) => `${m.model}: ${m.count}`).join(', ') || 'none';
        io.stderr.write(
          `Target model: ${embedder.model} (${embedder.provider}). Memories by model: ${models}.\n`,
        );
        if (plan.pending === 0) {
          io.stdout.write(`Nothing to do: all ${all} memories use ${embedder.model}.\n`);
          return 0;
        }
        io.stderr.write(
          `warning: until migrated, ${plan.pending} memories are not recalled: search only ` +
            `compares ${embedder.model} vectors. They come back batch by batch.\n`,
        );
        if (values['dry-run']) {
          io.stdout.write(
            `Dry run: would re-embed ${plan.pending} memories in ` +
              `${Math.ceil(plan.pending / batchSize)} batches of ${batchSize}.\n`,
          );
          return 0;
        }
        return await migrate(db.prisma, embedder, plan.pending, batchSize, io);
      } finally {
        if (!deps.embedder) await embedder.close?.();
      }
    });
  });
}

async function migrate(
  prisma: Parameters<typeof reembedMemories>[0],
  embedder: Embedder,
  pending: number,
  batchSize: number,
  io: CliIo,
): Promise<number> {
  const stop = new AbortController();
  const abandon = new AbortController();
  let firstAt = 0;
  const onSignal = () => {
    if (!stop.signal.aborted) {
      stop.abort();
      firstAt = Date.now();
      io.stderr.write('\nFinishing the batch in flight, then stopping (Ctrl-C again: drop it).\n');
    } else if (!abandon.signal.aborted && Date.now() - firstAt > SIGNAL_REPEAT_MS) {
      abandon.abort();
      io.stderr.write('\nDropping the batch in flight.\n');
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const bar = new ProgressBar({ total: pending, stream: io.stderr, label: 'Re-embedding' });
  const started = Date.now();
  let done = 0;
  let result: ReembedResult;
  try {
    bar.update(0);
    result = await reembedMemories(prisma, embedder, {
      batchSize,
      signal: stop.signal,
      abandonSignal: abandon.signal,
      onBatch: (p) => {
        done = p.migrated;
        bar.update(p.migrated + p.skipped);
      },
    });
    bar.finish();
  } catch (err) {
    bar.finish();
    const left = await countPending(prisma, embedder.model).catch(() => null);
    throw new CliError(
      `re-embedding failed after ${done} memories: ${(err as Error).message}\n` +
        `Everything written so far is kept${left === null ? '' : `; ${left} left`}. ` +
        'Rerun to continue.',
    );
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  io.stdout.write(
    `Re-embedded ${result.migrated} memories with ${embedder.model} in ${result.batches} ` +
      `batches (${seconds} s).\n`,
  );
  if (result.outcome !== 'done') {
    io.stdout.write(
      `${result.outcome === 'abandoned' ? 'Abandoned the batch in flight (nothing of it was written). ' : ''}` +
        `Stopped early: ${result.remaining} left. Rerun to continue.\n`,
    );
    return 130;
  }
  if (result.remaining > 0) {
    io.stderr.write(
      `warning: ${result.remaining} memories still use another model (edited during the run, or ` +
        'written by a server still on the old model). Rerun to migrate them.\n',
    );
  }
  return 0;
}

if (isEntryPoint(import.meta.url)) runCli(reembedCommand);
