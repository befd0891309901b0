import { z } from 'zod';
import type { JobHandler } from '../jobs/worker.js';
import type { Services } from '../services.js';
import { guardCandidates } from './guard.js';
import {
  findMemoriesByIds,
  insertMemory,
  type LayerScope,
  layerOf,
  searchLayer,
  supersedeMemory,
} from './store.js';

export const EXTRACT_MEMORIES = 'extract_memories';

const Payload = z.object({ replyId: z.uuid() });
const StoredRecall = z.object({
  profile: z.array(z.object({ id: z.string() })),
  relationship: z.array(z.object({ id: z.string() })),
});

/**
 * Turns one chat turn into memories: extract → guard → batch-embed → dedup/supersede →
 * write rows, history and the job's completion in one transaction. A crash anywhere before
 * that commit leaves nothing behind, so a re-run writes each memory once.
 */
export function extractMemoriesHandler(s: Services): JobHandler {
  return async (job, ctx) => {
    const { replyId } = Payload.parse(job.payload);
    const reply = await s.prisma.message.findUnique({
      where: { id: replyId },
      include: {
        replyTo: true,
        session: { include: { instance: { include: { persona: true } } } },
      },
    });
    const userMessage = reply?.replyTo;
    if (!reply || !userMessage) {
      // The conversation was deleted before extraction ran: nothing left to remember.
      await s.prisma.$transaction((tx) => ctx.complete(tx));
      return;
    }
    const { instance } = reply.session;
    const prior = await s.prisma.message.findMany({
      where: { sessionId: reply.sessionId, createdAt: { lt: userMessage.createdAt } },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      take: 4,
      select: { role: true, content: true },
    });
    const recalled = StoredRecall.safeParse(reply.recall);
    const recalledIds = recalled.success
      ? [...recalled.data.profile, ...recalled.data.relationship].map((r) => r.id)
      : [];
    const existing = (await findMemoriesByIds(s.prisma, recalledIds)).map((m) => ({
      id: m.id,
      content: m.content,
      layer: layerOf(m),
    }));

    const candidates = guardCandidates(
      await s.extractor.extract({
        userMessage: userMessage.content,
        reply: reply.content,
        priorMessages: prior.reverse().map((m) => ({
          role: m.role === 'USER' ? ('user' as const) : ('assistant' as const),
          content: m.content,
        })),
        messageTime: userMessage.createdAt,
        personaName: instance.persona.name,
        existing,
      }),
      { maxChars: s.config.memoryMaxChars, maxCount: s.config.memoryMaxPerTurn },
      s.logger,
    );
    const vectors =
      candidates.length > 0
        ? await s.embedder.embed(
            candidates.map((c) => c.content),
            'document',
          )
        : [];

    await s.prisma.$transaction(async (tx) => {
      // One writer per user at a time, so the near-duplicate check below sees every row
      // that a concurrent job of the same user wrote.
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended(${reply.userId}, 0))`;
      for (const [i, c] of candidates.entries()) {
        const embedding = vectors[i];
        if (!embedding) throw new Error('embedder returned fewer vectors than inputs');
        const scope: LayerScope = {
          userId: reply.userId,
          instanceId: c.layer === 'PROFILE' ? null : instance.id,
        };
        const [nearest] = await searchLayer(tx, scope, {
          embedding,
          model: s.embedder.model,
          k: 1,
        });
        if (
          nearest &&
          nearest.score >= s.config.dedupThreshold &&
          nearest.memory.id !== c.supersedes
        ) {
          s.logger.debug({ job: job.id, near: nearest.memory.id }, 'near-duplicate memory skipped');
          continue;
        }
        const id = await insertMemory(tx, {
          scope,
          content: c.content,
          category: c.category,
          confidence: c.confidence ?? null,
          embedding,
          embeddingModel: s.embedder.model,
          sourceMessageId: userMessage.id,
          sourceSessionId: reply.sessionId,
        });
        if (!id) continue;
        const history: {
          memoryId: string;
          action: 'ADDED' | 'SUPERSEDED';
          oldContent: string | null;
        }[] = [{ memoryId: id, action: 'ADDED', oldContent: null }];
        if (c.supersedes) {
          const old = await supersedeMemory(tx, scope, c.supersedes, id);
          if (old) {
            history.push({ memoryId: old.id, action: 'SUPERSEDED', oldContent: old.content });
          }
        }
        await tx.memoryHistory.createMany({
          data: history.map((h) => ({
            ...h,
            newContent: c.content,
            userId: reply.userId,
            instanceId: scope.instanceId,
            actorType: 'worker',
            actorId: ctx.workerId,
            jobId: job.id,
          })),
        });
      }
      await ctx.complete(tx);
    });
  };
}
