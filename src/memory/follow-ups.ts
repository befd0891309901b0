import { type FollowUp, type FollowUpState, Prisma, type PrismaClient } from '@prisma/client';
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

/**
 * The oldest due OPEN thread an instance may raise (relationship: its own only), as a SELECT of
 * at most one row (id, memory_id, due_at, content, occurred_at) for a larger statement: the
 * chat turn reads it in the same round trip as its session (src/chat/turn-store.ts).
 * `instanceId` is SQL (a parameter or a column of the enclosing statement).
 */
export function dueFollowUpSelect(userId: string, instanceId: Prisma.Sql, now: Date): Prisma.Sql {
  return Prisma.sql`
    SELECT f.id, f.memory_id, f.due_at, mem.content, mem.occurred_at
    FROM follow_ups f JOIN memories mem ON mem.id = f.memory_id
    WHERE f.user_id = ${userId}::uuid AND f.state = 'OPEN' AND f.due_at <= ${now}::timestamptz
      AND f.expires_at > ${now}::timestamptz
      AND (f.instance_id IS NULL OR f.instance_id = ${instanceId})
      -- A corrected event ("the interview moved to Monday") is asked about by its new thread.
      AND mem.superseded_by_id IS NULL
    ORDER BY f.due_at, f.created_at, f.id
    LIMIT 1`;
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
  return (await tx.$executeRaw(markAskedStatement(t))) === 1;
}

/**
 * The UPDATE of `markAsked` as a fragment, for the chat turn's single reply statement (a CTE
 * beside the reply's INSERT, so the mark commits with the reply or not at all).
 */
export function markAskedStatement(t: {
  id: string;
  instanceId: string;
  replyId: string;
  now: Date;
}): Prisma.Sql {
  return Prisma.sql`
    UPDATE follow_ups SET state = 'ASKED', asked_at = ${t.now}::timestamptz,
      asked_instance_id = ${t.instanceId}::uuid, asked_reply_id = ${t.replyId}::uuid,
      updated_at = ${t.now}::timestamptz
    WHERE id = ${t.id}::uuid AND state = 'OPEN'`;
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
  return db.$executeRaw(expireFollowUpsStatement(userId, now));
}

/** The UPDATE of `expireFollowUps`, for the turn's opening statement (a CTE; `when`: its guard). */
export function expireFollowUpsStatement(
  userId: string,
  now: Date,
  when: Prisma.Sql = Prisma.sql`true`,
): Prisma.Sql {
  return Prisma.sql`
    UPDATE follow_ups SET state = 'EXPIRED', updated_at = ${now}::timestamptz
    WHERE user_id = ${userId}::uuid AND state IN ('OPEN', 'ASKED')
      AND expires_at <= ${now}::timestamptz AND ${when}`;
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
