import type { Memory, MemoryHistory, PrismaClient } from '@prisma/client';
import { Prisma } from '@prisma/client';
import { badInput, conflict, forbidden, notFound } from '../errors.js';
import type { UserLimits } from '../limits.js';
import type { Embedder } from '../providers/embeddings/types.js';
import type { MemoryEvents } from './events.js';
import { exportUserMemories, type UserMemoryExport } from './export.js';
import { EXTRACT_MEMORIES } from './extract-job.js';
import { contentHash, type Db, toVectorLiteral } from './store.js';
import type { MemoryCategory, MemoryLayer } from './types.js';

/**
 * What people do to stored memories: edit, delete, forget a whole scope, export. Owners act on
 * their own memories, admins on anyone's. Each change and its memory_history row commit
 * together, under the per-user advisory lock the extraction worker takes, so an edit never
 * interleaves with a job writing the same user's memories (the duplicate check and a forget
 * see every row that job wrote).
 */
export interface Actor {
  id: string;
  isAdmin: boolean;
}

export const mayManage = (actor: Actor, ownerId: string) => actor.id === ownerId || actor.isAdmin;

/** The owner writes as 'user'; an admin touching someone else's memories is audited as 'admin'. */
export const auditActor = (actor: Actor, ownerId: string) => ({
  actorType: actor.id === ownerId ? 'user' : 'admin',
  actorId: actor.id,
});

export async function lockUserMemories(tx: Db, userId: string): Promise<void> {
  // Same key as extract-job.ts: one memory writer per user at a time.
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended(${userId}, 0))`;
}

/** A missing memory and someone else's look the same to a stranger: NOT_FOUND, no existence leak. */
async function manageable(db: Db, actor: Actor, id: string): Promise<Memory> {
  const row = await db.memory.findUnique({ where: { id } });
  if (!row || !mayManage(actor, row.userId)) throw notFound('Memory');
  return row;
}

function assertLive(row: Memory): void {
  if (row.supersededById) {
    throw conflict('This memory was superseded by a newer one; edit that one instead.');
  }
}

/** The worker's guard (guard.ts) normalises the same way, so edited and extracted text agree. */
export function cleanContent(raw: string, maxChars: number): string {
  const content = raw.replace(/\s+/g, ' ').trim();
  if (!content) throw badInput('content must not be empty.', { field: 'content' });
  if (content.length > maxChars) {
    throw badInput(`content is longer than ${maxChars} characters.`, { field: 'content' });
  }
  return content;
}

export interface MemoryEdit {
  content?: string | null;
  category?: MemoryCategory | null;
}

export async function updateMemory(
  s: {
    prisma: PrismaClient;
    embedder: Embedder;
    limits: UserLimits;
    config: { memoryMaxChars: number };
    memoryEvents?: MemoryEvents;
  },
  actor: Actor,
  id: string,
  edit: MemoryEdit,
): Promise<Memory> {
  const content = edit.content == null ? null : cleanContent(edit.content, s.config.memoryMaxChars);
  const category = edit.category ?? null;
  if (content === null && category === null) {
    throw badInput('Nothing to change: give content or category.', { field: 'input' });
  }
  const before = await manageable(s.prisma, actor, id);
  assertLive(before);
  const newContent = content !== null && content !== before.content ? content : null;
  // Embedded before the transaction: a provider call (seconds, with retries) must not hold
  // the user's write lock. A document vector, like the ones the worker stores.
  if (newContent) await s.limits.admitEmbed(actor.id);
  const [embedding] = newContent ? await s.embedder.embed([newContent], 'document') : [];
  if (newContent && !embedding) throw new Error('embedder returned no vector');

  let changed = false;
  const updated = await s.prisma.$transaction(async (tx) => {
    changed = false;
    await lockUserMemories(tx, before.userId);
    const row = await manageable(tx, actor, id);
    assertLive(row);
    if (newContent && embedding) {
      const hash = contentHash(newContent);
      const twin = await tx.memory.findFirst({
        where: {
          userId: row.userId,
          instanceId: row.instanceId,
          contentHash: hash,
          supersededById: null,
          id: { not: row.id },
        },
        select: { id: true },
      });
      if (twin) throw conflict('Another memory in this layer already says that.');
      await writeContent(
        tx,
        row.id,
        { content: newContent, hash, category, embedding },
        s.embedder,
      );
    } else if (category !== null && category !== row.category) {
      await tx.memory.update({ where: { id: row.id }, data: { category } });
    } else {
      return row; // nothing changes, so nothing to audit
    }
    changed = true;
    await tx.memoryHistory.create({
      data: {
        memoryId: row.id,
        userId: row.userId,
        instanceId: row.instanceId,
        action: 'UPDATED',
        oldContent: row.content,
        newContent: newContent ?? row.content,
        ...auditActor(actor, row.userId),
      },
    });
    return tx.memory.findUniqueOrThrow({ where: { id: row.id } });
  });
  if (changed) {
    await s.memoryEvents?.publish([
      {
        kind: 'UPDATED',
        userId: updated.userId,
        memoryId: updated.id,
        instanceId: updated.instanceId,
      },
    ]);
  }
  return updated;
}

/**
 * The one vector write outside store.ts (and reembed.ts): store.ts has no statement that
 * replaces a memory's text and vector, so it lives beside its only caller. Like store.ts, the
 * vector is a bound text parameter cast to `vector` (toVectorLiteral checks its size).
 */
async function writeContent(
  tx: Db,
  id: string,
  next: { content: string; hash: string; category: MemoryCategory | null; embedding: number[] },
  embedder: Embedder,
): Promise<void> {
  await tx.$executeRaw`
    UPDATE memories SET content = ${next.content}, content_hash = ${next.hash},
      category = COALESCE(${next.category}::memory_category, category),
      embedding = ${toVectorLiteral(next.embedding)}::vector, embedding_model = ${embedder.model},
      updated_at = now()
    WHERE id = ${id}::uuid`;
}

/** Deletes one memory (superseded ones too); its history keeps a DELETED row with the text. */
export async function deleteMemory(
  prisma: PrismaClient,
  actor: Actor,
  id: string,
  events?: MemoryEvents,
): Promise<void> {
  const { userId } = await manageable(prisma, actor, id);
  const row = await prisma.$transaction(async (tx) => {
    await lockUserMemories(tx, userId);
    const row = await manageable(tx, actor, id);
    await tx.memory.delete({ where: { id } });
    await tx.memoryHistory.create({
      data: {
        memoryId: row.id,
        userId: row.userId,
        instanceId: row.instanceId,
        action: 'DELETED',
        oldContent: row.content,
        ...auditActor(actor, row.userId),
      },
    });
    return row;
  });
  await events?.publish([
    { kind: 'DELETED', userId: row.userId, memoryId: row.id, instanceId: row.instanceId },
  ]);
}

export interface ForgetRequest {
  /** Whose memories (admins only for someone else); the caller's by default. */
  userId?: string | null;
  /** One layer (neither layer nor instanceId: everything, see `everything`). */
  layer?: MemoryLayer | null;
  /** One persona instance's relationship memories. */
  instanceId?: string | null;
  /**
   * Must be true for the erasure of everything (no layer, no instance), and only then: a client
   * that lost its instanceId on the way (`undefined` vanishes from JSON) must not wipe a user.
   */
  everything?: boolean | null;
}

interface ForgetScope {
  userId: string;
  layer: MemoryLayer | null;
  instanceId: string | null;
}

async function forgetScope(
  prisma: PrismaClient,
  actor: Actor,
  r: ForgetRequest,
): Promise<ForgetScope> {
  const whole = r.layer == null && r.instanceId == null;
  if (whole !== (r.everything === true)) {
    throw badInput(
      whole
        ? 'To forget every memory, say everything: true (or give a layer or an instanceId).'
        : 'everything: true cannot be combined with a layer or an instanceId.',
      { field: 'everything' },
    );
  }
  if (r.instanceId != null) {
    if (r.layer === 'PROFILE') {
      throw badInput('A persona instance holds relationship memories only.', { field: 'layer' });
    }
    const instance = await prisma.personaInstance.findUnique({ where: { id: r.instanceId } });
    if (
      !instance ||
      !mayManage(actor, instance.userId) ||
      (r.userId && r.userId !== instance.userId)
    ) {
      throw notFound('Persona instance');
    }
    return { userId: instance.userId, layer: 'RELATIONSHIP', instanceId: instance.id };
  }
  const userId = r.userId ?? actor.id;
  if (!mayManage(actor, userId)) throw forbidden('Only admins may act on another user.');
  if (userId !== actor.id && !(await prisma.user.findUnique({ where: { id: userId } }))) {
    throw notFound('User');
  }
  return { userId, layer: r.layer ?? null, instanceId: null };
}

/** The same rows of `memories` and `memory_history`: both carry user_id and instance_id. */
function scopeSql(scope: ForgetScope): Prisma.Sql {
  const user = Prisma.sql`user_id = ${scope.userId}::uuid`;
  if (scope.instanceId) return Prisma.sql`${user} AND instance_id = ${scope.instanceId}::uuid`;
  if (scope.layer === 'PROFILE') return Prisma.sql`${user} AND instance_id IS NULL`;
  if (scope.layer === 'RELATIONSHIP') return Prisma.sql`${user} AND instance_id IS NOT NULL`;
  return user;
}

/** A heavy user has ~50k memories: more than Prisma's default 5 s on a small machine. */
const FORGET_TIMEOUT = { timeout: 60_000 };

/**
 * Deletes every memory in the scope (their vectors go with the rows) and scrubs the text out
 * of that scope's history, deleted memories' included. History rows themselves stay, as the
 * record that changes happened, when and by whom, plus one DELETED row per forgotten memory;
 * no content of the scope survives anywhere in the two tables. Returns the number deleted.
 */
export async function forgetMemories(
  prisma: PrismaClient,
  actor: Actor,
  request: ForgetRequest,
  events?: MemoryEvents,
): Promise<number> {
  const scope = await forgetScope(prisma, actor, request);
  const where = scopeSql(scope);
  const { actorType, actorId } = auditActor(actor, scope.userId);
  const deleted = await prisma.$transaction(async (tx) => {
    await lockUserMemories(tx, scope.userId);
    await tx.$executeRaw`
      INSERT INTO memory_history (id, memory_id, user_id, instance_id, action, actor_type,
        actor_id, created_at)
      SELECT gen_random_uuid(), id, user_id, instance_id, 'DELETED'::memory_action,
        ${actorType}, ${actorId}, now()
      FROM memories WHERE ${where}`;
    await tx.$executeRaw`
      UPDATE memory_history SET old_content = NULL, new_content = NULL
      WHERE ${where} AND (old_content IS NOT NULL OR new_content IS NOT NULL)`;
    const deleted = await tx.$executeRaw`DELETE FROM memories WHERE ${where}`;
    if (!scope.layer) await closeQueuedExtraction(tx, scope.userId);
    return deleted;
  }, FORGET_TIMEOUT);
  await events?.publish([
    {
      kind: 'FORGOTTEN',
      userId: scope.userId,
      memoryId: null,
      instanceId: scope.instanceId,
      layer: scope.layer,
      count: deleted,
    },
  ]);
  return deleted;
}

/**
 * An erasure must not be undone by extraction still queued for turns sent before it, so the
 * user's unfinished extraction jobs are closed. A worker in the middle of one fails its claim
 * check at commit (completeJob) and rolls its writes back. Scoped forgets leave jobs alone:
 * a turn feeds both layers, and cancelling it would lose the other layer's memories.
 */
async function closeQueuedExtraction(tx: Db, userId: string): Promise<void> {
  await tx.$executeRaw`
    UPDATE jobs SET status = 'DONE', finished_at = now(), locked_at = NULL, locked_by = NULL,
      last_error = 'cancelled: the user''s memories were forgotten', updated_at = now()
    WHERE user_id = ${userId}::uuid AND kind = ${EXTRACT_MEMORIES} AND status <> 'DONE'`;
}

/** The export document of src/memory/export.ts (the CLI's), for the owner or an admin. */
export async function exportMemories(
  prisma: PrismaClient,
  actor: Actor,
  userId: string | null,
): Promise<UserMemoryExport> {
  const target = userId ?? actor.id;
  if (!mayManage(actor, target)) throw forbidden('Only admins may export another user.');
  const document = await exportUserMemories(prisma, target);
  if (!document) throw notFound('User');
  return document;
}

export interface HistoryPage {
  rows: MemoryHistory[];
  hasNextPage: boolean;
}

/**
 * One page of history per memory, newest first, in one statement however many memories are
 * asked for (GraphQL batches every Memory.history of a response into a single call). The
 * window function bounds each memory's rows in SQL, so a memory edited a thousand times costs
 * `first + 1` rows, not a thousand.
 */
export async function historyPages(
  db: Db,
  memoryIds: readonly string[],
  page: { first: number; after?: { createdAt: Date; id: string } },
): Promise<HistoryPage[]> {
  const after = page.after
    ? Prisma.sql`AND (created_at, id) < (${page.after.createdAt.toISOString()}::timestamptz, ${page.after.id}::uuid)`
    : Prisma.empty;
  const rows = await db.$queryRaw<MemoryHistory[]>`
    SELECT id, memory_id AS "memoryId", user_id AS "userId", instance_id AS "instanceId",
      action::text AS action, old_content AS "oldContent", new_content AS "newContent",
      actor_type AS "actorType", actor_id AS "actorId", job_id AS "jobId", created_at AS "createdAt"
    FROM (
      SELECT *, row_number() OVER (PARTITION BY memory_id ORDER BY created_at DESC, id DESC) AS n
      FROM memory_history WHERE memory_id = ANY(${[...memoryIds]}::uuid[]) ${after}
    ) ranked
    WHERE n <= ${page.first + 1}
    ORDER BY created_at DESC, id DESC`;
  const byMemory = new Map<string, MemoryHistory[]>();
  for (const row of rows) {
    const list = byMemory.get(row.memoryId);
    if (list) list.push(row);
    else byMemory.set(row.memoryId, [row]);
  }
  return memoryIds.map((id) => {
    const list = byMemory.get(id) ?? [];
    return { rows: list.slice(0, page.first), hasNextPage: list.length > page.first };
  });
}
