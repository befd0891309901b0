import { layerOf } from '../../memory/store.js';
import { MEMORY_CATEGORIES } from '../../memory/types.js';
import { ownerOrAdmin } from '../auth.js';
import { builder } from '../builder.js';

export const MemoryCategory = builder.enumType('MemoryCategory', { values: MEMORY_CATEGORIES });
export const MemoryLayer = builder.enumType('MemoryLayer', {
  values: {
    PROFILE: { description: 'About the user; every persona may know it.' },
    RELATIONSHIP: { description: 'Between the user and one persona instance.' },
  } as const,
});

export const Memory = builder.prismaNode('Memory', {
  id: { field: 'id' },
  authScopes: ownerOrAdmin,
  fields: (t) => ({
    content: t.exposeString('content'),
    category: t.expose('category', { type: MemoryCategory }),
    layer: t.field({ type: MemoryLayer, resolve: (m) => layerOf(m) }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
    confidence: t.exposeFloat('confidence', { nullable: true }),
    embeddingModel: t.exposeString('embeddingModel'),
    superseded: t.boolean({ resolve: (m) => m.supersededById !== null }),
  }),
});

export interface MemoryEdgeShape {
  cursor: string;
  node: typeof Memory.$inferType;
  score: number | null;
}

export const MemoryConnection = builder
  .objectRef<{
    edges: MemoryEdgeShape[];
    pageInfo: {
      hasNextPage: boolean;
      hasPreviousPage: boolean;
      startCursor: string | null;
      endCursor: string | null;
    };
  }>('MemoryConnection')
  .implement({
    fields: (t) => ({
      edges: t.field({ type: [MemoryEdge], resolve: (c) => c.edges }),
      pageInfo: t.field({ type: builder.pageInfoRef(), resolve: (c) => c.pageInfo }),
    }),
  });

export const MemoryEdge = builder.objectRef<MemoryEdgeShape>('MemoryEdge').implement({
  fields: (t) => ({
    cursor: t.exposeString('cursor'),
    node: t.field({ type: Memory, resolve: (e) => e.node }),
    score: t.exposeFloat('score', {
      nullable: true,
      description: 'Relevance (cosine similarity, -1..1) when the query had `search`.',
    }),
  }),
});
