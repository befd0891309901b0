import { z } from 'zod';
import { DeferJobError, type JobContext, type JobHandler, LostClaimError } from '../jobs/worker.js';
import type { Services } from '../services.js';
import { zoneOrUtc } from '../time/zone.js';
import { memoryBudgetDelay } from '../usage/budgets.js';
import { UsageMeter } from '../usage/meter.js';
import { writeUsage } from '../usage/record.js';
import type { MemoryEvent } from './events.js';
import { closeAnswered, openThread, threadTimes } from './follow-ups.js';
import { guardCandidates } from './guard.js';
import { fromThisTurn } from './provenance.js';
import { readStoredRecall } from './recall.js';
import {
  findMemoriesByIds,
  insertMemory,
  type LayerScope,
  layerOf,
  searchLayer,
  supersedeMemory,
} from './store.js';
import type { ExistingMemory, MemoryCandidate } from './types.js';

export const EXTRACT_MEMORIES = 'extract_memories';

const Payload = z.object({ replyId: z.uuid() });
/** Similar memories per layer shown to the extractor, so it neither repeats nor contradicts them. */
const SIMILAR_PER_LAYER = 5;
const RATE_WINDOW_MS = 60_000;

/**
 * Turns one chat turn into memories: extract → guard → batch-embed → dedup/supersede →
 * write rows, history and the job's completion in one transaction. A crash anywhere before
 * that commit leaves nothing behind, so a re-run writes each memory once.
 */
export function extractMemoriesHandler(s: Services): JobHandler {
  return async (job, ctx) => {
    const meter = new UsageMeter();
    try {
      await extractTurn(s, meter)(job, ctx);
    } catch (err) {
      // The provider calls of a failed or deferred attempt were paid for all the same: their
      // usage goes to the ledger on its own (best effort; the attempt's transaction is gone).
      const entries = meter.entries();
      if (job.userId && entries.length > 0) {
        const userId = job.userId;
        await writeUsage(s.prisma, s.metrics, userId, s.now(), meter)
          .then((count) => count())
          .catch((e) => s.logger.debug({ err: e, job: job.id }, 'usage of a failed job not saved'));
      }
      throw err;
    }
  };
}

/** One attempt of the job; provider usage goes to `meter` and is written with the results. */
function extractTurn(outer: Services, meter: UsageMeter): JobHandler {
  // The job's provider calls are metered (kinds extraction and embedding).
  const s: Services = {
    ...outer,
    embedder: meter.embedder(outer.embedder),
    extractor: meter.extractor(outer.extractor),
  };
  return async (job, ctx) => {
    const { replyId } = Payload.parse(job.payload);
    const reply = await s.prisma.message.findUnique({
      where: { id: replyId },
      include: {
        replyTo: true,
        session: {
          include: {
            instance: { include: { persona: true } },
            user: { select: { timeZone: true } },
          },
        },
      },
    });
    const userMessage = reply?.replyTo;
    if (!reply || !userMessage) {
      // The conversation was deleted before extraction ran: nothing left to remember.
      await s.prisma.$transaction((tx) => completeUnlessErased(tx, ctx));
      return;
    }
    const userId = reply.userId;
    const { instance } = reply.session;
    const now = s.now();
    // Over the daily memory budget the job waits for the next UTC day, its attempt not counted.
    const wait = await memoryBudgetDelay(s.prisma, s.usage, userId, now);
    if (wait !== null) {
      s.metrics.budgetExceeded.inc({ budget: 'memory' });
      throw new DeferJobError(wait, 'daily memory budget');
    }
    const timeZone = zoneOrUtc(reply.session.user.timeZone);
    const prior = await s.prisma.message.findMany({
      where: { sessionId: reply.sessionId, createdAt: { lt: userMessage.createdAt } },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      take: 4,
      select: { id: true, role: true, content: true },
    });
    // The persona's reply just before this message: if it asked a follow-up, this answers it.
    const answered = prior[0]?.role === 'ASSISTANT' ? prior[0].id : null;

    const extracted = await s.extractor.extract({
      userMessage: userMessage.content,
      reply: reply.content,
      priorMessages: prior.reverse().map((m) => ({
        role: m.role === 'USER' ? ('user' as const) : ('assistant' as const),
        content: m.content,
      })),
      messageTime: userMessage.createdAt,
      timeZone,
      personaName: instance.persona.name,
      existing: await existingMemories(
        s,
        { userId, instanceId: instance.id },
        userMessage.content,
        reply.recall,
      ),
    });
    // Only this turn is a source: a fact found only in the earlier messages (perhaps forgotten
    // since) is not written back.
    const fresh = fromThisTurn(extracted, {
      userMessage: userMessage.content,
      reply: reply.content,
      context: prior.map((m) => m.content),
      personaName: instance.persona.name,
    });
    if (fresh.dropped > 0) {
      s.logger.info({ job: job.id, dropped: fresh.dropped }, 'memories only in context dropped');
    }
    const candidates = guardCandidates(
      fresh.kept,
      { maxChars: s.config.memoryMaxChars, maxCount: s.config.memoryMaxPerTurn },
      s.logger,
    );
    s.metrics.memoryWrites.inc({ outcome: 'dropped' }, extracted.length - candidates.length);
    const vectors =
      candidates.length > 0
        ? await s.embedder.embed(
            candidates.map((c) => c.content),
            'document',
          )
        : [];

    const events: WrittenEvent[] = [];
    let counted = () => {};
    await s.prisma.$transaction(async (tx) => {
      events.length = 0; // a retried transaction starts over
      // One writer per user at a time, so the rate count and the near-duplicate check below
      // see every row that a concurrent job of the same user wrote.
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended(${userId}, 0))`;
      // The job's provider usage commits with its results (an erased user gets no row).
      counted = await writeUsage(tx, s.metrics, userId, now, meter);
      // Session deletion and account erasure take the same lock: if the turn went meanwhile,
      // what it said must not come back as memories (nor land on an erased user).
      if (!(await tx.message.findUnique({ where: { id: userMessage.id }, select: { id: true } }))) {
        await completeUnlessErased(tx, ctx);
        return;
      }
      await enforceWriteRate(tx, userId, candidates.length, s.config.memoryWritesPerMinute);
      for (const [i, c] of candidates.entries()) {
        const embedding = vectors[i];
        if (!embedding) throw new Error('embedder returned fewer vectors than inputs');
        const scope: LayerScope = {
          userId,
          instanceId: c.layer === 'PROFILE' ? null : instance.id,
        };
        const written = await writeCandidate(tx, s, scope, c, embedding, {
          jobId: job.id,
          actorType: 'worker',
          actorId: ctx.workerId,
          sourceMessageId: userMessage.id,
          sourceSessionId: reply.sessionId,
          now,
          timeZone,
        });
        events.push(...written);
      }
      if (answered) await closeAnswered(tx, { userId, askedReplyId: answered, now });
      await ctx.complete(tx);
    });
    counted();
    meter.clear();
    await s.memoryEvents.publish(events);
  };
}

type Tx = Parameters<Parameters<Services['prisma']['$transaction']>[0]>[0];

/** Completes a job with nothing to write; an erased user's job row is already gone, quietly. */
async function completeUnlessErased(tx: Tx, ctx: JobContext): Promise<void> {
  try {
    await ctx.complete(tx);
  } catch (err) {
    if (!(err instanceof LostClaimError)) throw err;
  }
}

/** The memories recalled into the turn plus the most similar ones of each layer. */
async function existingMemories(
  s: Services,
  scope: { userId: string; instanceId: string },
  text: string,
  recall: unknown,
): Promise<ExistingMemory[]> {
  const stored = readStoredRecall(recall);
  const ids = [...stored.profile, ...stored.relationship].map((r) => r.id);
  const [embedding] = await s.embedder.embed([text], 'query');
  if (!embedding) throw new Error('embedder returned no vector');
  const query = { embedding, model: s.embedder.model, k: SIMILAR_PER_LAYER };
  const [profile, relationship, recalled] = await Promise.all([
    searchLayer(s.prisma, { userId: scope.userId, instanceId: null }, query),
    searchLayer(s.prisma, scope, query),
    findMemoriesByIds(s.prisma, ids),
  ]);
  const byId = new Map<string, ExistingMemory>();
  for (const m of [
    ...recalled,
    ...profile.map((r) => r.memory),
    ...relationship.map((r) => r.memory),
  ]) {
    // A recalled memory may have been superseded since the turn: only live ones count.
    if (m.supersededById === null && m.userId === scope.userId) {
      byId.set(m.id, { id: m.id, content: m.content, layer: layerOf(m) });
    }
  }
  return [...byId.values()];
}

/**
 * Per-user write budget over a sliding minute. Over budget, the whole job is deferred until
 * the window has room: nothing is dropped, and a burst of turns cannot flood the table.
 */
export async function enforceWriteRate(
  tx: Tx,
  userId: string,
  incoming: number,
  perMinute: number,
) {
  if (incoming === 0) return;
  const [row] = await tx.$queryRaw<{ n: bigint; oldest: Date | null }[]>`
    SELECT count(*) AS n, min(created_at) AS oldest FROM memory_history
    WHERE user_id = ${userId}::uuid AND action = 'ADDED'
      AND created_at > now() - make_interval(secs => ${RATE_WINDOW_MS / 1000})`;
  const recent = Number(row?.n ?? 0);
  // An empty window always admits one job, so a budget smaller than a turn still progresses.
  if (recent === 0 || recent + incoming <= perMinute) return;
  const oldest = row?.oldest?.getTime() ?? Date.now();
  throw new DeferJobError(
    Math.max(1000, oldest + RATE_WINDOW_MS - Date.now()),
    'memory write rate limit',
  );
}

export type WrittenEvent = Omit<MemoryEvent, 'at'>;

export interface WriteOrigin {
  jobId: string | null;
  /** 'worker' (extraction), or 'user' / 'admin' (rememberMemory). */
  actorType: string;
  actorId: string;
  sourceMessageId: string | null;
  sourceSessionId: string | null;
  /** The domain clock's now: the row's createdAt, and the base of a follow-up's due date. */
  now: Date;
  /** The user's zone: a date-only event is due once that day has passed there. */
  timeZone: string;
}

/**
 * One candidate through dedup/supersede into a row and its history. Returns the events to
 * publish once the transaction has committed (nothing for a duplicate).
 */
export async function writeCandidate(
  tx: Tx,
  s: Pick<Services, 'embedder' | 'config' | 'logger' | 'metrics'>,
  scope: LayerScope,
  c: MemoryCandidate,
  embedding: number[],
  origin: WriteOrigin,
): Promise<WrittenEvent[]> {
  const [nearest] = await searchLayer(tx, scope, { embedding, model: s.embedder.model, k: 1 });
  if (nearest && nearest.score >= s.config.dedupThreshold && nearest.memory.id !== c.supersedes) {
    s.logger.debug({ job: origin.jobId, near: nearest.memory.id }, 'near-duplicate memory skipped');
    s.metrics.memoryWrites.inc({ outcome: 'duplicate' });
    return [];
  }
  const id = await insertMemory(tx, {
    scope,
    content: c.content,
    category: c.category,
    confidence: c.confidence ?? null,
    embedding,
    embeddingModel: s.embedder.model,
    sourceMessageId: origin.sourceMessageId,
    sourceSessionId: origin.sourceSessionId,
    occurredAt: c.occurredAt ?? null,
    createdAt: origin.now,
  });
  if (!id) {
    s.metrics.memoryWrites.inc({ outcome: 'duplicate' });
    return [];
  }
  s.metrics.memoryWrites.inc({ outcome: 'added' });
  const thread = threadTimes(c, origin.now, origin.timeZone, {
    windowDays: s.config.followUpWindowDays,
  });
  if (thread) {
    await openThread(tx, {
      userId: scope.userId,
      memoryId: id,
      instanceId: scope.instanceId,
      ...thread,
      now: origin.now,
    });
  }
  const history: { memoryId: string; action: 'ADDED' | 'SUPERSEDED'; oldContent: string | null }[] =
    [{ memoryId: id, action: 'ADDED', oldContent: null }];
  if (c.supersedes) {
    const old = await supersedeMemory(tx, scope, c.supersedes, id);
    if (old) {
      history.push({ memoryId: old.id, action: 'SUPERSEDED', oldContent: old.content });
      s.metrics.memoryWrites.inc({ outcome: 'superseded' });
    }
  }
  await tx.memoryHistory.createMany({
    data: history.map((h) => ({
      ...h,
      newContent: c.content,
      userId: scope.userId,
      instanceId: scope.instanceId,
      actorType: origin.actorType,
      actorId: origin.actorId,
      jobId: origin.jobId,
    })),
  });
  const { userId, instanceId } = scope;
  return history.map((h) => ({
    kind: h.action,
    userId,
    memoryId: h.memoryId,
    instanceId,
  }));
}
