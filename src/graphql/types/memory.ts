import { layerOf } from '../../memory/store.js';
import { MEMORY_CATEGORIES } from '../../memory/types.js';
import { ownerOrAdmin, visibleRows } from '../auth.js';
import { builder } from '../builder.js';
import type { Context } from '../context.js';
import { parseGlobalId } from '../ids.js';
import {
  historyPageOf,
  loadHistoryConnections,
  MemoryHistoryConnection,
} from './memory-history.js';
import { Message } from './message.js';

export const MemoryCategory = builder.enumType('MemoryCategory', { values: MEMORY_CATEGORIES });
export const MemoryLayer = builder.enumType('MemoryLayer', {
  values: {
    PROFILE: { description: 'About the user; every persona may know it.' },
    RELATIONSHIP: { description: 'Between the user and one persona instance.' },
  } as const,
});

export const Memory = builder.prismaNode('Memory', {
  id: { field: 'id' },
  // node(id): another user's memory is not found, like a missing one (see visibleRows).
  findUnique: (id, ctx) => ({ id, ...visibleRows(ctx) }),
  nullable: true,
  authScopes: ownerOrAdmin,
  fields: (t) => ({
    content: t.exposeString('content'),
    category: t.expose('category', { type: MemoryCategory }),
    layer: t.field({ type: MemoryLayer, resolve: (m) => layerOf(m) }),
    createdAt: t.expose('createdAt', {
      type: 'DateTime',
      description: 'When it was stored (told).',
    }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
    occurredAt: t.expose('occurredAt', {
      type: 'DateTime',
      nullable: true,
      description:
        "When the event happened or will happen; a day is the start of that day in the user's " +
        'time zone. Null for timeless facts.',
    }),
    confidence: t.exposeFloat('confidence', { nullable: true }),
    embeddingModel: t.exposeString('embeddingModel'),
    superseded: t.boolean({ resolve: (m) => m.supersededById !== null }),
  }),
});

// The hops from a memory to other rows. Each is batched per response (a relation the prisma
// plugin loads with its parent, or a DataLoader), so a page of memories costs one query per
// hop, not one per memory.
builder.prismaObjectFields(Memory, (t) => ({
  instance: t.relation('instance', {
    nullable: true,
    description: 'The persona instance of a relationship memory; null for profile memories.',
  }),
  sourceMessage: t.loadable({
    type: Message,
    nullable: true,
    description: 'The user message it was extracted from; null if unknown or since deleted.',
    sort: (message) => message.id,
    resolve: (memory) => memory.sourceMessageId,
    load: (ids: string[], ctx: Context) =>
      ctx.prisma.message.findMany({ where: { id: { in: ids }, ...visibleRows(ctx) } }),
  }),
  supersededBy: t.loadable({
    type: Memory,
    nullable: true,
    description: 'The memory that corrected this one; null if live, or if that one was deleted.',
    sort: (memory) => memory.id,
    resolve: (memory) => memory.supersededById,
    load: (ids: string[], ctx: Context) =>
      ctx.prisma.memory.findMany({ where: { id: { in: ids }, ...visibleRows(ctx) } }),
  }),
  history: t.loadable({
    type: MemoryHistoryConnection,
    description: 'Every change to this memory, newest first (first: 1-100, default 20).',
    args: { first: t.arg.int(), after: t.arg.string() },
    // One loader per field path: every memory at that path shares the same page arguments.
    byPath: true,
    resolve: (memory, args, ctx) => {
      ctx.listBudget.charge(historyPageOf(args).first);
      return memory.id;
    },
    load: (ids: string[], ctx: Context, args) => loadHistoryConnections(ids, ctx, args),
  }),
}));

builder.queryField('memory', (t) =>
  t.prismaField({
    type: 'Memory',
    nullable: true,
    description: 'One memory, for its owner or an admin (the same rule as node(id)).',
    args: { id: t.arg.id({ required: true }) },
    resolve: (query, _root, { id }, ctx) =>
      ctx.prisma.memory.findUnique({
        ...query,
        where: { id: parseGlobalId(String(id), 'Memory', 'id'), ...visibleRows(ctx) },
      }),
  }),
);

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
      description:
        'Relevance when the query had `search`: in HYBRID mode the fused rank score in (0, 1] ' +
        '(1 = first by both meaning and words; <= 0.5 = found by one only); in VECTOR mode the ' +
        'cosine similarity (-1..1). Null for plain listings.',
    }),
  }),
});
