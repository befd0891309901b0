import { createServices, createWorker, openConfiguredDatabase } from './composition.js';
import { parseEnv } from './env.js';
import { createLogger } from './logger.js';

/**
 * `npm run worker`: the extraction worker as its own process (set WORKER_ENABLED=false on the
 * API servers). Several may run against one Postgres; SKIP LOCKED keeps them apart.
 */
async function main(): Promise<void> {
  const env = parseEnv();
  const logger = createLogger(env.LOG_LEVEL);
  if (!env.DATABASE_URL) {
    // PGlite is one process's database; a second process cannot open the same data dir.
    throw new Error('npm run worker needs DATABASE_URL (embedded mode runs the worker in-process)');
  }
  const db = await openConfiguredDatabase(env, logger);
  const services = createServices(env, db, logger);
  const worker = createWorker(env, services);
  worker.start();
  logger.info(
    {
      worker: worker.id,
      embeddings: services.embedder.model,
      extractor: services.extractor.provider,
    },
    'worker started',
  );
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'worker stopping');
    await worker.stop(env.SHUTDOWN_TIMEOUT_MS);
    await db.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
