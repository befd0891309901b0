import type { Memory } from '@prisma/client';
import { AppError, badInput, notFound } from '../errors.js';
import { DeferJobError } from '../jobs/worker.js';
import type { Services } from '../services.js';
import { zoneOrUtc } from '../time/zone.js';
import { UsageMeter } from '../usage/meter.js';
import { writeUsage } from '../usage/record.js';
import { enforceWriteRate, type WrittenEvent, writeCandidate } from './extract-job.js';
import { guardCandidates } from './guard.js';
import { type Actor, auditActor, cleanContent, lockUserMemories, mayManage } from './manage.js';
import type { LayerScope } from './store.js';
import type { MemoryCategory, MemoryLayer } from './types.js';

export interface RememberRequest {
  /** Whose memory (admins only for someone else); the caller's by default. */
  userId?: string | null;
  layer: MemoryLayer;
  /** Required for RELATIONSHIP, refused for PROFILE. */
  instanceId?: string | null;
  content: string;
  category?: MemoryCategory | null;
  /** A live memory of the same layer this one corrects. */
  supersedes?: string | null;
}

export interface RememberResult {
  /** The new memory, or the live one that already says the same (duplicate: true). */
  memory: Memory | null;
  duplicate: boolean;
}

async function scopeOf(s: Services, actor: Actor, r: RememberRequest): Promise<LayerScope> {
  if (r.layer === 'PROFILE') {
    if (r.instanceId != null) {
      throw badInput('A profile memory belongs to no persona instance.', { field: 'instanceId' });
    }
    const userId = r.userId ?? actor.id;
    if (!mayManage(actor, userId)) throw notFound('User');
    if (userId !== actor.id && !(await s.prisma.user.findUnique({ where: { id: userId } }))) {
      throw notFound('User');
    }
    return { userId, instanceId: null };
  }
  if (r.instanceId == null) {
    throw badInput('A relationship memory needs its instanceId.', { field: 'instanceId' });
  }
  const instance = await s.prisma.personaInstance.findUnique({ where: { id: r.instanceId } });
  if (
    !instance ||
    !mayManage(actor, instance.userId) ||
    (r.userId && r.userId !== instance.userId)
  ) {
    throw notFound('Persona instance');
  }
  return { userId: instance.userId, instanceId: instance.id };
}

/**
 * "Remember that…": one memory written on purpose, through the extraction path itself — the
 * guard (guard.ts), the per-user write lock and write rate, near-duplicate detection,
 * supersede, history and events (writeCandidate in extract-job.ts) — so an explicit memory
 * and an extracted one cannot differ in how they are kept. It embeds text, so it also takes a
 * token of the user's MEMORY_EMBEDS_PER_MINUTE budget; over the write rate it is RATE_LIMITED
 * (a request cannot be deferred the way a job is).
 */
export async function rememberMemory(
  s: Services,
  actor: Actor,
  r: RememberRequest,
): Promise<RememberResult> {
  const content = cleanContent(r.content, s.config.memoryMaxChars);
  const scope = await scopeOf(s, actor, r);
  if (r.supersedes != null) {
    const old = await s.prisma.memory.findUnique({ where: { id: r.supersedes } });
    if (!old || old.userId !== scope.userId || old.instanceId !== scope.instanceId) {
      throw notFound('Memory to supersede');
    }
    if (old.supersededById)
      throw badInput('That memory is superseded already.', { field: 'supersedes' });
  }
  const [candidate] = guardCandidates(
    [
      {
        content,
        category: r.category ?? 'OTHER',
        layer: r.layer,
        confidence: 1,
        supersedes: r.supersedes ?? undefined,
      },
    ],
    { maxChars: s.config.memoryMaxChars, maxCount: 1 },
    s.logger,
  );
  if (!candidate) throw badInput('content cannot be remembered.', { field: 'content' });
  s.limits.admitEmbed(actor.id);
  const meter = new UsageMeter();
  const [embedding] = await meter.embedder(s.embedder).embed([candidate.content], 'document');
  if (!embedding) throw new Error('embedder returned no vector');

  const user = await s.prisma.user.findUnique({
    where: { id: scope.userId },
    select: { timeZone: true },
  });
  let events: WrittenEvent[] = [];
  let counted = () => {};
  try {
    events = await s.prisma.$transaction(async (tx) => {
      await lockUserMemories(tx, scope.userId);
      counted = await writeUsage(tx, s.metrics, scope.userId, s.now(), meter);
      await enforceWriteRate(tx, scope.userId, 1, s.config.memoryWritesPerMinute);
      return writeCandidate(tx, s, scope, candidate, embedding, {
        jobId: null,
        ...auditActor(actor, scope.userId),
        sourceMessageId: null,
        sourceSessionId: null,
        now: s.now(),
        timeZone: zoneOrUtc(user?.timeZone),
      });
    });
  } catch (err) {
    if (!(err instanceof DeferJobError)) throw err;
    const retryAfterSeconds = Math.max(1, Math.ceil(err.delayMs / 1000));
    throw new AppError('RATE_LIMITED', `Too many memory writes. Retry in ${retryAfterSeconds} s.`, {
      retryAfterSeconds,
    });
  }
  counted();
  await s.memoryEvents.publish(events);
  const added = events.find((e) => e.kind === 'ADDED');
  if (added?.memoryId) {
    return {
      memory: await s.prisma.memory.findUnique({ where: { id: added.memoryId } }),
      duplicate: false,
    };
  }
  // A duplicate: the live memory of the layer that says the same, if it is an exact one.
  const twin = await s.prisma.memory.findFirst({
    where: {
      userId: scope.userId,
      instanceId: scope.instanceId,
      content: candidate.content,
      supersededById: null,
    },
  });
  return { memory: twin, duplicate: true };
}
