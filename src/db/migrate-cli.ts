import { openConfiguredDatabase } from '../composition.js';
import { parseEnv } from '../env.js';
import { createLogger } from '../logger.js';

/**
 * `npm run migrate`: applies pending migrations to DATABASE_URL (or the embedded database)
 * and exits. The Fly release command runs this before new machines start.
 */
const env = parseEnv();
const logger = createLogger(env.LOG_LEVEL);
try {
  const db = await openConfiguredDatabase(env, logger);
  await db.close();
  logger.info('database is up to date');
} catch (err) {
  logger.fatal({ err }, 'migration failed');
  process.exitCode = 1;
}
