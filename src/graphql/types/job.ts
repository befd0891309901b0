import { discardJob, retryDeadJobs, retryJob } from '../../jobs/admin.js';
import { builder } from '../builder.js';
import { parseGlobalId } from '../ids.js';

export const JobStatus = builder.enumType('JobStatus', {
  values: ['PENDING', 'RUNNING', 'DONE', 'DEAD'] as const,
});

/** Background work (memory extraction). Admins only: payloads reference users' messages. */
export const Job = builder.prismaNode('Job', {
  id: { field: 'id' },
  // node(id): for anyone but an admin no job exists (an empty `in` matches nothing), so a
  // job id is not confirmed to a stranger; a missing one is null, not an error.
  findUnique: (id, ctx) => (ctx.viewer?.isAdmin ? { id } : { id, AND: [{ id: { in: [] } }] }),
  nullable: true,
  authScopes: { admin: true },
  fields: (t) => ({
    kind: t.exposeString('kind'),
    status: t.expose('status', { type: JobStatus }),
    attempts: t.exposeInt('attempts'),
    maxAttempts: t.exposeInt('maxAttempts'),
    lastError: t.exposeString('lastError', { nullable: true }),
    runAt: t.expose('runAt', { type: 'DateTime' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime', nullable: true }),
  }),
});

builder.queryField('deadJobs', (t) =>
  t.prismaConnection(
    {
      type: 'Job',
      cursor: 'id',
      maxSize: 100,
      authScopes: { admin: true },
      description: 'Jobs that used up their attempts, newest first (admin).',
      resolve: (query, _root, _args, ctx) =>
        ctx.prisma.job.findMany({
          ...query,
          where: { status: 'DEAD' },
          orderBy: [{ updatedAt: 'desc' }, { id: 'desc' }],
        }),
    },
    { name: 'JobConnection' },
    { name: 'JobEdge' },
  ),
);

const JobInput = builder.inputType('JobInput', {
  fields: (t) => ({ jobId: t.id({ required: true }) }),
});

const RetryDeadJobsPayload = builder
  .objectRef<{ count: number }>('RetryDeadJobsPayload')
  .implement({
    fields: (t) => ({
      count: t.exposeInt('count', { description: 'Jobs put back in the queue.' }),
    }),
  });

const DiscardJobPayload = builder.objectRef<{ jobId: string }>('DiscardJobPayload').implement({
  fields: (t) => ({ jobId: t.exposeID('jobId') }),
});

builder.mutationFields((t) => ({
  retryDeadJobs: t.field({
    type: RetryDeadJobsPayload,
    authScopes: { admin: true },
    description: 'Requeue every dead job with a fresh attempt budget (admin).',
    resolve: async (_root, _args, ctx) => {
      const count = await retryDeadJobs(ctx.prisma);
      if (count > 0) ctx.services.wakeWorker();
      return { count };
    },
  }),
  retryJob: t.prismaField({
    type: 'Job',
    authScopes: { admin: true },
    description: 'Requeue one dead job (admin).',
    args: { input: t.arg({ type: JobInput, required: true }) },
    resolve: async (_query, _root, { input }, ctx) => {
      const job = await retryJob(ctx.prisma, parseGlobalId(String(input.jobId), 'Job', 'jobId'));
      ctx.services.wakeWorker();
      return job;
    },
  }),
  discardJob: t.field({
    type: DiscardJobPayload,
    authScopes: { admin: true },
    description: 'Delete one dead job for good (admin).',
    args: { input: t.arg({ type: JobInput, required: true }) },
    resolve: async (_root, { input }, ctx) => {
      await discardJob(ctx.prisma, parseGlobalId(String(input.jobId), 'Job', 'jobId'));
      return { jobId: String(input.jobId) };
    },
  }),
}));
