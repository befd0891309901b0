import { Prisma, type PrismaClient } from '@prisma/client';
import type { UserLimits } from '../limits.js';
import type { Embedder } from '../providers/embeddings/types.js';
import type { FusionSettings } from './fusion.js';
import {
  COLUMNS,
  filterConditions,
  type LayerScope,
  layerOf,
  type MemoryFilter,
  type MemoryRow,
  type ScoredMemory,
  searchLayer,
  searchLayerHybrid,
} from './store.js';
import type { MemoryLayer } from './types.js';

/** A keyset position in a newest-first listing: rows strictly older than (createdAt, id). */
export interface Keyset {
  createdAt: Date;
  id: string;
}

export interface ListRequest {
  scope: LayerScope;
  filter: MemoryFilter;
  first: number;
  /** Keyset position: rows strictly older than this. */
  after?: Keyset;
}

export interface ListPage {
  rows: MemoryRow[];
  hasNextPage: boolean;
}

/**
 * Memories of one layer per request, newest first, keyset-paginated (stable under inserts).
 * Requests that differ only in their layer and position share one statement: a dashboard
 * listing every persona instance at once costs one round trip.
 */
export async function listMemoryPages(
  prisma: PrismaClient,
  requests: readonly ListRequest[],
): Promise<ListPage[]> {
  const groups = new Map<string, number[]>();
  for (const [i, r] of requests.entries()) {
    const key = JSON.stringify([layerOf(r.scope), r.filter, r.first]);
    groups.set(key, [...(groups.get(key) ?? []), i]);
  }
  const pages: ListPage[] = requests.map(() => ({ rows: [], hasNextPage: false }));
  await Promise.all(
    [...groups.values()].map(async (members) => {
      const batch = members.map((i) => requests[i] as ListRequest);
      const head = batch[0];
      if (!head) return;
      // One row beyond the page tells whether another page follows.
      const rows = await listLayers(
        prisma,
        layerOf(head.scope),
        batch,
        head.filter,
        head.first + 1,
      );
      for (const [j, i] of members.entries()) {
        const mine = rows[j] ?? [];
        pages[i] = { rows: mine.slice(0, head.first), hasNextPage: mine.length > head.first };
      }
    }),
  );
  return pages;
}

/**
 * Newest-first keyset pages of several layers of one kind (all profile or all relationship)
 * in one statement, `limit` rows each. Each page is its own LATERAL subquery, so it reads only
 * its own rows from its layer's (user | instance, created_at) btree index.
 */
async function listLayers(
  prisma: PrismaClient,
  layer: MemoryLayer,
  pages: readonly { scope: LayerScope; after?: Keyset }[],
  filter: MemoryFilter,
  limit: number,
): Promise<MemoryRow[][]> {
  if (pages.length === 0) return [];
  const users = pages.map((p) => p.scope.userId);
  // Unused for profile pages, which match `instance_id IS NULL` (so the partial index serves).
  const instances = pages.map((p) => p.scope.instanceId ?? '00000000-0000-0000-0000-000000000000');
  const afterAt = pages.map((p) => p.after?.createdAt.toISOString() ?? null);
  const afterId = pages.map((p) => p.after?.id ?? null);
  const conditions = [
    Prisma.sql`memories.user_id = page.user_id`,
    layer === 'PROFILE'
      ? Prisma.sql`memories.instance_id IS NULL`
      : Prisma.sql`memories.instance_id = page.instance_id`,
    Prisma.sql`(page.after_at IS NULL
      OR (memories.created_at, memories.id) < (page.after_at, page.after_id))`,
    ...filterConditions(filter),
  ];
  const rows = await prisma.$queryRaw<(MemoryRow & { page: number })[]>`
    SELECT page.n::int AS page, listed.*
    FROM unnest(${users}::uuid[], ${instances}::uuid[], ${afterAt}::timestamptz[],
        ${afterId}::uuid[]) WITH ORDINALITY AS page(user_id, instance_id, after_at, after_id, n)
    CROSS JOIN LATERAL (
      SELECT ${COLUMNS} FROM memories
      WHERE ${Prisma.join(conditions, ' AND ')}
      ORDER BY memories.created_at DESC, memories.id DESC
      LIMIT ${limit}
    ) AS listed
    ORDER BY page.n, listed."createdAt" DESC, listed.id DESC`;
  const out = pages.map((): MemoryRow[] => []);
  for (const { page, ...row } of rows) out[page - 1]?.push(row);
  return out;
}

/**
 * HYBRID: meaning and words fused by reciprocal rank, the very ranking (and settings) of chat
 * recall. VECTOR: cosine similarity only.
 */
export type SearchMode = 'HYBRID' | 'VECTOR';

export interface SearchOptions extends MemoryFilter {
  text: string;
  mode: SearchMode;
  first: number;
  offset: number;
}

/**
 * Memories of one layer ranked by relevance to `text`, paged by offset into the ranking. Each
 * search embeds its text, so it counts against the searcher's (`actorId`) per-minute limit.
 */
export async function searchMemories(
  deps: {
    prisma: PrismaClient;
    embedder: Embedder;
    limits: UserLimits;
    config: { fusion: FusionSettings };
  },
  scope: LayerScope,
  options: SearchOptions & { actorId: string },
): Promise<{ rows: ScoredMemory[]; hasNextPage: boolean }> {
  await deps.limits.admitEmbed(options.actorId);
  const [embedding] = await deps.embedder.embed([options.text], 'query');
  if (!embedding) throw new Error('embedder returned no vector');
  const { text, mode, first, offset, actorId: _actor, ...filter } = options;
  const query = { ...filter, embedding, model: deps.embedder.model, k: first + 1, offset };
  const rows =
    mode === 'HYBRID'
      ? await searchLayerHybrid(deps.prisma, scope, { ...query, text }, deps.config.fusion)
      : await searchLayer(deps.prisma, scope, query);
  return { rows: rows.slice(0, first), hasNextPage: rows.length > first };
}
