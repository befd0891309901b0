import { Prisma, type PrismaClient } from '@prisma/client';
import { notFound } from '../errors.js';
import { MEMORY_CATEGORIES, type MemoryCategory, type MemoryLayer } from './types.js';

export interface LayerStats {
  layer: MemoryLayer;
  /** Every stored row of the layer, superseded and expired ones included. */
  total: number;
  /** Rows recall can return: neither superseded nor expired. */
  live: number;
  superseded: number;
  /** Not superseded, but past `expires_at`. */
  expired: number;
  /** Latest insert, update or history entry (deletes leave only history behind). */
  lastWriteAt: Date | null;
  /** Live rows per category; every category is listed, zeros included. */
  byCategory: { category: MemoryCategory; count: number }[];
  /** All rows per embedding model (re-embedding moves every row, superseded ones too). */
  byEmbeddingModel: { model: string; count: number }[];
}

export interface MemoryStats {
  /** null: the whole database. */
  userId: string | null;
  profile: LayerStats;
  relationship: LayerStats;
}

interface GroupRow {
  profile: boolean;
  category: MemoryCategory | null;
  model: string | null;
  /** GROUPING(category, model), a bit set per column left out: 1 = per category, 2 = per model, 3 = the layer. */
  grouping: number;
  total: number;
  live: number;
  superseded: number;
  expired: number;
  last_write: Date | null;
}

/**
 * Per-layer memory statistics of one user (or of everyone) in two statements whatever the
 * number of categories or models: one GROUPING SETS pass over `memories` yields the layer
 * totals and both breakdowns, one grouped read of `memory_history` adds writes that left no
 * row behind (deletes). Per user they use the `user_id` indexes of both tables.
 */
export async function memoryStats(
  prisma: PrismaClient,
  userId: string | null,
): Promise<MemoryStats> {
  const ofUser = userId ? Prisma.sql`WHERE user_id = ${userId}::uuid` : Prisma.empty;
  const [user, groups, history] = await Promise.all([
    userId ? prisma.user.findUnique({ where: { id: userId }, select: { id: true } }) : null,
    prisma.$queryRaw<GroupRow[]>`
      SELECT instance_id IS NULL AS profile, category::text AS category,
        embedding_model AS model, GROUPING(category, embedding_model)::int AS grouping,
        count(*)::int AS total,
        count(*) FILTER (WHERE superseded_by_id IS NULL
          AND (expires_at IS NULL OR expires_at > now()))::int AS live,
        count(*) FILTER (WHERE superseded_by_id IS NOT NULL)::int AS superseded,
        count(*) FILTER (WHERE superseded_by_id IS NULL AND expires_at <= now())::int AS expired,
        max(updated_at) AS last_write
      FROM memories ${ofUser}
      GROUP BY GROUPING SETS ((instance_id IS NULL, category), (instance_id IS NULL, embedding_model),
        (instance_id IS NULL))`,
    prisma.$queryRaw<{ profile: boolean; last_write: Date }[]>`
      SELECT instance_id IS NULL AS profile, max(created_at) AS last_write
      FROM memory_history ${ofUser}
      GROUP BY instance_id IS NULL`,
  ]);
  if (userId && !user) throw notFound('User');
  const layer = (profile: boolean): LayerStats => {
    const mine = groups.filter((g) => g.profile === profile);
    const whole = mine.find((g) => g.grouping === 3);
    const liveBy = new Map(mine.filter((g) => g.grouping === 1).map((g) => [g.category, g.live]));
    const lastWrites = [whole?.last_write, history.find((h) => h.profile === profile)?.last_write];
    return {
      layer: profile ? 'PROFILE' : 'RELATIONSHIP',
      total: whole?.total ?? 0,
      live: whole?.live ?? 0,
      superseded: whole?.superseded ?? 0,
      expired: whole?.expired ?? 0,
      lastWriteAt: latest(lastWrites),
      byCategory: MEMORY_CATEGORIES.map((category) => ({
        category,
        count: liveBy.get(category) ?? 0,
      })),
      byEmbeddingModel: mine
        .flatMap((g) =>
          g.grouping === 2 && g.model !== null ? [{ model: g.model, count: g.total }] : [],
        )
        .sort((a, b) => b.count - a.count || a.model.localeCompare(b.model)),
    };
  };
  return { userId, profile: layer(true), relationship: layer(false) };
}

function latest(dates: (Date | null | undefined)[]): Date | null {
  const times = dates.filter((d): d is Date => d instanceof Date).map((d) => d.getTime());
  return times.length > 0 ? new Date(Math.max(...times)) : null;
}
