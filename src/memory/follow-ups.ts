import type { FollowUp, FollowUpState, Prisma, PrismaClient } from '@prisma/client';
import { notFound } from '../errors.js';
import { addDays, compareDates, localDateOf, startOfLocalDay } from '../time/zone.js';
import type { Db } from './store.js';
import type { MemoryCategory } from './types.js';

/**
 * Follow-ups (open threads): an EVENT memory whose date is after the day it was told becomes a
 * thread. Lifecycle, each step guarded by the state it leaves so a step never runs twice:
 *
 *   OPEN ──(due, carried by a turn's prompt)──▶ ASKED ──(user's next message)──▶ CLOSED
 *     │                                           │
 *     └──────(window over: expires_at)────────────┴──▶ EXPIRED      (dismiss: CLOSED any time)
 *
 * Due means the event's day has passed in the user's zone: from the start of the next local
 * day. Who asks: a relationship-layer thread only its persona; a profile-layer thread the
 * first persona the user talks to. At most one per turn, the oldest due first.
 */
export const FOLLOW_UP_CATEGORY: MemoryCategory = 'EVENT';

export interface FollowUpConfig {
  /** Days after it is due that a thread stays askable (FOLLOW_UP_WINDOW_DAYS). */
  windowDays: number;
}

const DAY_MS = 86_400_000;

/** The thread a new memory opens, if any: only events dated after the day they were told. */
export function threadTimes(
  m: { category: MemoryCategory; occurredAt?: Date | null },
  now: Date,
  zone: string,
  config: FollowUpConfig,
): { dueAt: Date; expiresAt: Date } | null {
  if (m.category !== FOLLOW_UP_CATEGORY || !m.occurredAt) return null;
  const day = localDateOf(m.occurredAt, zone);
  if (compareDates(day, localDateOf(now, zone)) <= 0) return null;
  const dueAt = startOfLocalDay(addDays(day, 1), zone);
  return { dueAt, expiresAt: new Date(dueAt.getTime() + config.windowDays * DAY_MS) };
}

export async function openThread(
  db: Db,
  t: {
    userId: string;
    memoryId: string;
    instanceId: string | null;
    dueAt: Date;
    expiresAt: Date;
    now: Date;
  },
): Promise<void> {
  await db.followUp.create({
    data: {
      userId: t.userId,
      memoryId: t.memoryId,
      instanceId: t.instanceId,
      dueAt: t.dueAt,
      expiresAt: t.expiresAt,
      createdAt: t.now,
      updatedAt: t.now,
    },
  });
}

export interface DueFollowUp {
  id: string;
  memoryId: string;
  content: string;
  occurredAt: Date | null;
  dueAt: Date;
}

/** The oldest due OPEN thread this persona instance may raise (relationship: its own only). */
export async function dueFollowUp(
  db: Db,
  scope: { userId: string; instanceId: string },
  now: Date,
): Promise<DueFollowUp | null> {
  const row = await db.followUp.findFirst({
    where: {
      userId: scope.userId,
      state: 'OPEN',
      dueAt: { lte: now },
      expiresAt: { gt: now },
      OR: [{ instanceId: null }, { instanceId: scope.instanceId }],
      // A corrected event ("the interview moved to Monday") is asked about by its new thread.
      memory: { supersededById: null },
    },
    orderBy: [{ dueAt: 'asc' }, { createdAt: 'asc' }, { id: 'asc' }],
    select: {
      id: true,
      memoryId: true,
      dueAt: true,
      memory: { select: { content: true, occurredAt: true } },
    },
  });
  if (!row) return null;
  return {
    id: row.id,
    memoryId: row.memoryId,
    content: row.memory.content,
    occurredAt: row.memory.occurredAt,
    dueAt: row.dueAt,
  };
}

/**
 * Records that `replyId`'s prompt carried the thread. Runs in the reply's transaction, so a
 * failed turn asks nothing. Two turns racing for one thread may both carry it; only the first
 * commit marks it (the second finds it ASKED), so it is never asked again afterwards.
 */
export async function markAsked(
  tx: Db,
  t: { id: string; instanceId: string; replyId: string; now: Date },
): Promise<boolean> {
  const { count } = await tx.followUp.updateMany({
    where: { id: t.id, state: 'OPEN' },
    data: {
      state: 'ASKED',
      askedAt: t.now,
      askedInstanceId: t.instanceId,
      askedReplyId: t.replyId,
      updatedAt: t.now,
    },
  });
  return count === 1;
}

/** The user's next message after the asking reply answers it (run by the extraction job). */
export async function closeAnswered(
  tx: Db,
  t: { userId: string; askedReplyId: string; now: Date },
): Promise<number> {
  const { count } = await tx.followUp.updateMany({
    where: { userId: t.userId, askedReplyId: t.askedReplyId, state: 'ASKED' },
    data: { state: 'CLOSED', closeReason: 'ANSWERED', closedAt: t.now, updatedAt: t.now },
  });
  return count;
}

/** Persists expiry of the user's threads whose window is over (called by turns, which write). */
export async function expireFollowUps(db: Db, userId: string, now: Date): Promise<number> {
  const { count } = await db.followUp.updateMany({
    where: { userId, state: { in: ['OPEN', 'ASKED'] }, expiresAt: { lte: now } },
    data: { state: 'EXPIRED', updatedAt: now },
  });
  return count;
}

/**
 * The state as of `now`: a thread past its window reads EXPIRED even before a turn persisted
 * it (reads never write).
 */
export function effectiveState(
  row: Pick<FollowUp, 'state' | 'expiresAt'>,
  now: Date,
): FollowUpState {
  const live = row.state === 'OPEN' || row.state === 'ASKED';
  return live && row.expiresAt <= now ? 'EXPIRED' : row.state;
}

/** A where clause selecting threads whose effective state is one of `states`. */
export function whereEffectiveState(
  states: readonly FollowUpState[],
  now: Date,
): Prisma.FollowUpWhereInput {
  const or: Prisma.FollowUpWhereInput[] = [];
  for (const state of new Set(states)) {
    if (state === 'OPEN' || state === 'ASKED') or.push({ state, expiresAt: { gt: now } });
    else if (state === 'EXPIRED') {
      or.push({ state: 'EXPIRED' }, { state: { in: ['OPEN', 'ASKED'] }, expiresAt: { lte: now } });
    } else or.push({ state });
  }
  return { OR: or };
}

/** Dismiss: the owner (or an admin) closes a thread so it is never asked. */
export async function dismissFollowUp(
  prisma: PrismaClient,
  actor: { id: string; isAdmin: boolean },
  id: string,
  now: Date,
): Promise<FollowUp> {
  const row = await prisma.followUp.findUnique({ where: { id } });
  // A stranger learns nothing, not even that the thread exists.
  if (!row || (row.userId !== actor.id && !actor.isAdmin)) throw notFound('Follow-up');
  if (row.state === 'CLOSED' || effectiveState(row, now) === 'EXPIRED') return row;
  await prisma.followUp.updateMany({
    where: { id, state: { in: ['OPEN', 'ASKED'] } },
    data: { state: 'CLOSED', closeReason: 'DISMISSED', closedAt: now, updatedAt: now },
  });
  return prisma.followUp.findUniqueOrThrow({ where: { id } });
}
