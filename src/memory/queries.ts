import type { MemoryCategory as PrismaCategory, PrismaClient } from '@prisma/client';
import type { Embedder } from '../providers/embeddings/types.js';
import { type LayerScope, type MemoryRow, type ScoredMemory, searchLayer } from './store.js';
import type { MemoryCategory } from './types.js';

export interface ListOptions {
  category?: MemoryCategory;
  first: number;
  /** Keyset position: rows strictly older than this. */
  after?: { createdAt: Date; id: string };
}

/** Live memories of one layer, newest first, keyset-paginated (stable under inserts). */
export async function listMemories(
  prisma: PrismaClient,
  scope: LayerScope,
  options: ListOptions,
): Promise<{ rows: MemoryRow[]; hasNextPage: boolean }> {
  const rows = await prisma.memory.findMany({
    where: {
      userId: scope.userId,
      instanceId: scope.instanceId,
      supersededById: null,
      ...(options.category ? { category: options.category as PrismaCategory } : {}),
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

export interface SearchOptions {
  text: string;
  category?: MemoryCategory;
  first: number;
  offset: number;
}

/** Memories of one layer ranked by meaning (cosine similarity of the query embedding). */
export async function searchMemories(
  deps: { prisma: PrismaClient; embedder: Embedder },
  scope: LayerScope,
  options: SearchOptions,
): Promise<{ rows: ScoredMemory[]; hasNextPage: boolean }> {
  const [embedding] = await deps.embedder.embed([options.text], 'query');
  if (!embedding) throw new Error('embedder returned no vector');
  const rows = await searchLayer(deps.prisma, scope, {
    embedding,
    model: deps.embedder.model,
    k: options.first + 1,
    offset: options.offset,
    category: options.category,
  });
  return { rows: rows.slice(0, options.first), hasNextPage: rows.length > options.first };
}
