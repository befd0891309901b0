import type { Job, PrismaClient } from '@prisma/client';
import { notFound } from '../errors.js';

/**
 * Operator actions on dead jobs. A retried job starts over with a fresh attempt budget; its
 * last error stays visible until it runs again.
 */
export async function retryDeadJobs(prisma: PrismaClient): Promise<number> {
  const { count } = await prisma.job.updateMany({
    where: { status: 'DEAD' },
    data: { status: 'PENDING', attempts: 0, runAt: new Date(), finishedAt: null },
  });
  return count;
}

export async function retryJob(prisma: PrismaClient, id: string): Promise<Job> {
  const { count } = await prisma.job.updateMany({
    where: { id, status: 'DEAD' },
    data: { status: 'PENDING', attempts: 0, runAt: new Date(), finishedAt: null },
  });
  if (count === 0) throw notFound('Dead job');
  return prisma.job.findUniqueOrThrow({ where: { id } });
}

/** Deletes a dead job for good (its turn's memories will never be extracted). */
export async function discardJob(prisma: PrismaClient, id: string): Promise<void> {
  const { count } = await prisma.job.deleteMany({ where: { id, status: 'DEAD' } });
  if (count === 0) throw notFound('Dead job');
}
