import type { MemoryCategory as PrismaCategory, PrismaClient } from '@prisma/client';
import type { Embedder } from '../providers/embeddings/types.js';
import {
  type LayerScope,
  type MemoryFilter,
  type MemoryRow,
  type ScoredMemory,
  searchLayer,
  searchLayerHybrid,
} from './store.js';

export interface ListOptions extends MemoryFilter {
  first: number;
  /** Keyset position: rows strictly older than this. */
  after?: { createdAt: Date; id: string };
}

/** Memories of one layer, newest first, keyset-paginated (stable under inserts). */
export async function listMemories(
  prisma: PrismaClient,
  scope: LayerScope,
  options: ListOptions,
): Promise<{ rows: MemoryRow[]; hasNextPage: boolean }> {
  const rows = await prisma.memory.findMany({
    where: {
      userId: scope.userId,
      instanceId: scope.instanceId,
      ...(options.includeSuperseded ? {} : { supersededById: null }),
      ...(options.category ? { category: options.category as PrismaCategory } : {}),
      // Undefined bounds are left out by Prisma.
      createdAt: { gte: options.createdAfter, lt: options.createdBefore },
      ...(options.after
        ? {
            OR: [
              { createdAt: { lt: options.after.createdAt } },
              { createdAt: options.after.createdAt, id: { lt: options.after.id } },
            ],
          }
        : {}),
    },
    orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
    take: options.first + 1,
  });
  return { rows: rows.slice(0, options.first), hasNextPage: rows.length > options.first };
}

/** HYBRID: meaning and words fused by reciprocal rank. VECTOR: cosine similarity only. */
export type SearchMode = 'HYBRID' | 'VECTOR';

export interface SearchOptions extends MemoryFilter {
  text: string;
  mode: SearchMode;
  first: number;
  offset: number;
}

/** Memories of one layer ranked by relevance to `text`, paged by offset into the ranking. */
export async function searchMemories(
  deps: { prisma: PrismaClient; embedder: Embedder },
  scope: LayerScope,
  options: SearchOptions,
): Promise<{ rows: ScoredMemory[]; hasNextPage: boolean }> {
  const [embedding] = await deps.embedder.embed([options.text], 'query');
  if (!embedding) throw new Error('embedder returned no vector');
  const { text, mode, first, offset, ...filter } = options;
  const query = { ...filter, embedding, model: deps.embedder.model, k: first + 1, offset };
  const rows =
    mode === 'HYBRID'
      ? await searchLayerHybrid(deps.prisma, scope, { ...query, text })
      : await searchLayer(deps.prisma, scope, query);
  return { rows: rows.slice(0, first), hasNextPage: rows.length > first };
}
