import { createContextCache } from '@pothos/core';
import DataLoader from 'dataloader';
import { badInput, forbidden, notFound } from '../../errors.js';
import { DEFAULT_FUSION } from '../../memory/fusion.js';
import {
  type ListPage,
  type ListRequest,
  listMemoryPages,
  type SearchMode,
  searchMemories,
} from '../../memory/queries.js';
import type { LayerScope, MemoryFilter } from '../../memory/store.js';
import { actorOf, viewerOf } from '../auth.js';
import { builder } from '../builder.js';
import type { Context } from '../context.js';
import {
  connectionOf,
  keysetCursor,
  offsetCursor,
  parseKeysetCursor,
  parseOffsetCursor,
} from '../cursors.js';
import { parseGlobalId, parseUserId } from '../ids.js';
import { MemoryCategory, MemoryConnection, type MemoryEdgeShape } from './memory.js';

const MAX_PAGE = 100;
const MAX_SEARCH_CHARS = 500;

export const MemorySearchMode = builder.enumType('MemorySearchMode', {
  description: 'How `search` ranks memories.',
  values: {
    HYBRID: {
      description:
        'Meaning and words, the ranking chat recall uses: the memories nearest by embedding and ' +
        'the best BM25 matches of any of the words (English stemming; dates match their month, ' +
        'year, weekday and season), fused by weighted reciprocal rank (depths and weights: the ' +
        `RECALL_* settings, by default ${DEFAULT_FUSION.vectorDepth} + ${DEFAULT_FUSION.lexicalDepth} ` +
        `rows, ${DEFAULT_FUSION.annVectorDepth} + ${DEFAULT_FUSION.lexicalDepth} in a layer of ` +
        `${DEFAULT_FUSION.annMinRows} memories or more). ` +
        'Finds exact names and rare words that meaning alone ranks low. Edge score: the ' +
        "fused score scaled to (0, 1]; 1 = ranked first by both, at most one side's share of " +
        'the weights = found by one side only.',
    },
    VECTOR: {
      description: 'Meaning only. Edge score: cosine similarity of the embeddings (-1..1).',
    },
  } as const,
});

const SEARCH_DESCRIPTION =
  `Rank by relevance instead of listing newest first; each edge gets a \`score\` (see \`searchMode\`). ` +
  `Up to ${MAX_SEARCH_CHARS} characters; any text is accepted and is only words: any of them ` +
  'may match, rarer words weigh more.';

const PAGING_DESCRIPTION =
  'Without `search`, `after` is a keyset cursor (createdAt, id): pages stay exact while ' +
  'memories are added. With `search`, `after` is an offset into the ranking: stable while the ' +
  'layer does not change, but a memory added or removed between two pages can shift the ' +
  'rest by one. HYBRID search returns at most RECALL_VECTOR_DEPTH + RECALL_LEXICAL_DEPTH ' +
  'memories (RECALL_ANN_VECTOR_DEPTH + RECALL_LEXICAL_DEPTH in a layer of RECALL_ANN_MIN_ROWS ' +
  'memories or more).';

/** Arguments both layers share (after the contract's, new ones are optional). */
const memoryPageArgs = builder.args((t) => ({
  category: t.field({ type: MemoryCategory, required: false }),
  search: t.string({ required: false, description: SEARCH_DESCRIPTION }),
  first: t.int({ required: false, description: `Page size, 1-${MAX_PAGE} (default 20).` }),
  after: t.string({ required: false }),
  createdAfter: t.field({
    type: 'DateTime',
    required: false,
    description: 'Only memories created at or after this instant (inclusive).',
  }),
  createdBefore: t.field({
    type: 'DateTime',
    required: false,
    description: 'Only memories created before this instant (exclusive: windows tile exactly).',
  }),
  occurredAfter: t.field({
    type: 'DateTime',
    required: false,
    description: 'Only memories that happen at or after this instant (`occurredAt`, inclusive).',
  }),
  occurredBefore: t.field({
    type: 'DateTime',
    required: false,
    description: 'Only memories that happen before this instant (`occurredAt`, exclusive).',
  }),
  includeSuperseded: t.boolean({
    required: false,
    defaultValue: false,
    description: 'Also memories a later correction superseded (never recalled in chat).',
  }),
  searchMode: t.field({
    type: MemorySearchMode,
    required: false,
    defaultValue: 'HYBRID',
    description: 'How `search` ranks; ignored without `search`.',
  }),
}));

/**
 * Listings of one request, batched: a dashboard aliasing relationshipMemories once per persona
 * instance gets all of them in one statement.
 */
const listings = createContextCache(
  (ctx: Context) =>
    new DataLoader<ListRequest, ListPage, string>((keys) => listMemoryPages(ctx.prisma, keys), {
      cacheKeyFn: (key) => JSON.stringify(key),
    }),
);

interface PageArgs {
  category?: typeof MemoryCategory.$inferType | null;
  search?: string | null;
  first?: number | null;
  after?: string | null;
  createdAfter?: Date | null;
  createdBefore?: Date | null;
  occurredAfter?: Date | null;
  occurredBefore?: Date | null;
  includeSuperseded?: boolean | null;
  searchMode?: SearchMode | null;
}

function filterOf(args: PageArgs): MemoryFilter {
  const { createdAfter, createdBefore } = args;
  if (createdAfter && createdBefore && createdAfter >= createdBefore) {
    throw badInput('createdAfter must be earlier than createdBefore.', { field: 'createdAfter' });
  }
  const { occurredAfter, occurredBefore } = args;
  if (occurredAfter && occurredBefore && occurredAfter >= occurredBefore) {
    throw badInput('occurredAfter must be earlier than occurredBefore.', {
      field: 'occurredAfter',
    });
  }
  return {
    category: args.category ?? undefined,
    createdAfter: createdAfter ?? undefined,
    createdBefore: createdBefore ?? undefined,
    occurredAfter: occurredAfter ?? undefined,
    occurredBefore: occurredBefore ?? undefined,
    includeSuperseded: args.includeSuperseded ?? false,
  };
}

/** Shared by both layers: a keyset listing, or with `search` a relevance-ranked page. */
async function memoryPage(ctx: Context, scope: LayerScope, args: PageArgs) {
  const first = args.first ?? 20;
  if (first < 1 || first > MAX_PAGE)
    throw badInput(`first must be 1-${MAX_PAGE}.`, { field: 'first' });
  ctx.listBudget.charge(first);
  const filter = filterOf(args);
  let edges: MemoryEdgeShape[];
  let hasNextPage: boolean;
  const search = args.search?.trim();
  if (search) {
    if (search.length > MAX_SEARCH_CHARS) {
      throw badInput(`search is longer than ${MAX_SEARCH_CHARS} characters.`, { field: 'search' });
    }
    const offset = args.after ? parseOffsetCursor(args.after) + 1 : 0;
    const mode = args.searchMode ?? 'HYBRID';
    const page = await searchMemories(ctx.services, scope, {
      ...filter,
      text: search,
      mode,
      first,
      offset,
      actorId: actorOf(ctx),
    });
    edges = page.rows.map((r, i) => ({
      node: r.memory,
      score: r.score,
      cursor: offsetCursor(offset + i),
    }));
    hasNextPage = page.hasNextPage;
  } else {
    const after = args.after ? parseKeysetCursor(args.after) : undefined;
    const page = await listings(ctx).load({ scope, filter, first, after });
    edges = page.rows.map((node) => ({ node, score: null, cursor: keysetCursor(node) }));
    hasNextPage = page.hasNextPage;
  }
  return connectionOf(edges, hasNextPage, args.after);
}

builder.queryFields((t) => ({
  profileMemories: t.field({
    type: MemoryConnection,
    description:
      'Profile memories (shared by all personas), newest first or ranked by `search`. ' +
      `\`userId\` is for admins only. ${PAGING_DESCRIPTION}`,
    args: { userId: t.arg.id({ required: false }), ...memoryPageArgs },
    resolve: async (_root, args, ctx) => {
      // A service caller has no profile of its own: it names the user (viewerOf refuses it).
      const userId =
        args.userId != null ? parseUserId(String(args.userId), 'userId') : viewerOf(ctx).id;
      if (userId !== ctx.viewer?.id && !ctx.viewer?.isAdmin)
        throw forbidden('Only admins may read other users.');
      return memoryPage(ctx, { userId, instanceId: null }, args);
    },
  }),
  relationshipMemories: t.field({
    type: MemoryConnection,
    description:
      'Relationship memories of one persona instance, newest first or ranked by `search`. ' +
      PAGING_DESCRIPTION,
    args: { instanceId: t.arg.id({ required: true }), ...memoryPageArgs },
    resolve: async (_root, args, ctx) => {
      const id = parseGlobalId(String(args.instanceId), 'PersonaInstance', 'instanceId');
      // findUnique: Prisma batches those of one tick (aliased listings) into one query.
      const instance = await ctx.prisma.personaInstance.findUnique({ where: { id } });
      // A stranger learns nothing, not even that the instance exists.
      if (!instance || (instance.userId !== ctx.viewer?.id && !ctx.viewer?.isAdmin)) {
        throw notFound('Persona instance');
      }
      return memoryPage(ctx, { userId: instance.userId, instanceId: instance.id }, args);
    },
  }),
}));
