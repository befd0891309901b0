import type { PrismaClient } from '@prisma/client';
import { pruneRateLimits } from '../limits-store.js';
import type { Logger } from '../logger.js';
import { pruneFinishedJobs } from './queue.js';

/** Rows per DELETE: short statements that never hold up claims or turns for long. */
const BATCH = 500;
/** Batches per run: 10 000 jobs, far above what one machine finishes between two runs. */
const MAX_BATCHES = 20;

/**
 * The worker's upkeep, so that no table grows with time alone: finished jobs older than the
 * retention, and rate-limit rows that have refilled (a missing row is a full bucket).
 */
export async function pruneTables(
  prisma: PrismaClient,
  retentionMs: number,
  logger: Logger,
): Promise<{ jobs: number; rateLimits: number }> {
  let jobs = 0;
  for (let i = 0; i < MAX_BATCHES; i++) {
    const n = await pruneFinishedJobs(prisma, retentionMs, BATCH);
    jobs += n;
    if (n < BATCH) break;
  }
  const rateLimits = await pruneRateLimits(prisma);
  if (jobs + rateLimits > 0)
    logger.debug({ jobs, rateLimits }, 'pruned finished jobs and rate-limit rows');
  return { jobs, rateLimits };
}
