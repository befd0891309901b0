import { badInput, forbidden, notFound } from '../../errors.js';
import { listMemories, searchMemories } from '../../memory/queries.js';
import type { LayerScope } from '../../memory/store.js';
import { viewerOf } from '../auth.js';
import { builder } from '../builder.js';
import type { Context } from '../context.js';
import { keysetCursor, offsetCursor, parseKeysetCursor, parseOffsetCursor } from '../cursors.js';
import { parseGlobalId, parseUserId } from '../ids.js';
import { MemoryCategory, MemoryConnection, type MemoryEdgeShape } from './memory.js';

const MAX_PAGE = 100;
const MAX_SEARCH_CHARS = 500;

interface PageArgs {
  category?: typeof MemoryCategory.$inferType | null;
  search?: string | null;
  first?: number | null;
  after?: string | null;
}

/** Shared by both layers: a keyset listing, or with `search` a relevance-ranked page. */
async function memoryPage(ctx: Context, scope: LayerScope, args: PageArgs) {
  const first = args.first ?? 20;
  if (first < 1 || first > MAX_PAGE)
    throw badInput(`first must be 1-${MAX_PAGE}.`, { field: 'first' });
  const category = args.category ?? undefined;
  let edges: MemoryEdgeShape[];
  let hasNextPage: boolean;
  const search = args.search?.trim();
  if (search) {
    if (search.length > MAX_SEARCH_CHARS) {
      throw badInput(`search is longer than ${MAX_SEARCH_CHARS} characters.`, { field: 'search' });
    }
    const offset = args.after ? parseOffsetCursor(args.after) + 1 : 0;
    const page = await searchMemories(ctx.services, scope, {
      text: search,
      category,
      first,
      offset,
    });
    edges = page.rows.map((r, i) => ({
      node: r.memory,
      score: r.score,
      cursor: offsetCursor(offset + i),
    }));
    hasNextPage = page.hasNextPage;
  } else {
    const after = args.after ? parseKeysetCursor(args.after) : undefined;
    const page = await listMemories(ctx.prisma, scope, { category, first, after });
    edges = page.rows.map((node) => ({ node, score: null, cursor: keysetCursor(node) }));
    hasNextPage = page.hasNextPage;
  }
  return {
    edges,
    pageInfo: {
      hasNextPage,
      hasPreviousPage: Boolean(args.after),
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges.at(-1)?.cursor ?? null,
    },
  };
}

builder.queryFields((t) => ({
  profileMemories: t.field({
    type: MemoryConnection,
    description: 'Profile memories (shared by all personas). `userId` is for admins only.',
    args: {
      userId: t.arg.id({ required: false }),
      category: t.arg({ type: MemoryCategory, required: false }),
      search: t.arg.string({ required: false, description: 'Rank by meaning; edges get a score.' }),
      first: t.arg.int({ required: false, description: `Page size, 1-${MAX_PAGE} (default 20).` }),
      after: t.arg.string({ required: false }),
    },
    resolve: async (_root, args, ctx) => {
      const viewer = viewerOf(ctx);
      const userId = args.userId ? parseUserId(String(args.userId), 'userId') : viewer.id;
      if (userId !== viewer.id && !viewer.isAdmin)
        throw forbidden('Only admins may read other users.');
      return memoryPage(ctx, { userId, instanceId: null }, args);
    },
  }),
  relationshipMemories: t.field({
    type: MemoryConnection,
    description: 'Relationship memories of one persona instance.',
    args: {
      instanceId: t.arg.id({ required: true }),
      category: t.arg({ type: MemoryCategory, required: false }),
      search: t.arg.string({ required: false, description: 'Rank by meaning; edges get a score.' }),
      first: t.arg.int({ required: false, description: `Page size, 1-${MAX_PAGE} (default 20).` }),
      after: t.arg.string({ required: false }),
    },
    resolve: async (_root, args, ctx) => {
      const viewer = viewerOf(ctx);
      const id = parseGlobalId(String(args.instanceId), 'PersonaInstance', 'instanceId');
      const instance = await ctx.prisma.personaInstance.findUnique({ where: { id } });
      // A stranger learns nothing, not even that the instance exists.
      if (!instance || (instance.userId !== viewer.id && !viewer.isAdmin)) {
        throw notFound('Persona instance');
      }
      return memoryPage(ctx, { userId: instance.userId, instanceId: instance.id }, args);
    },
  }),
}));
