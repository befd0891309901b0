import { badInput } from '../../errors.js';
import { historyPages } from '../../memory/manage.js';
import { ownerOrAdmin } from '../auth.js';
import { builder } from '../builder.js';
import type { Context } from '../context.js';
import { connectionOf, keysetCursor, parseKeysetCursor } from '../cursors.js';

export const MAX_HISTORY_PAGE = 100;
const DEFAULT_HISTORY_PAGE = 20;

export const MemoryAction = builder.enumType('MemoryAction', {
  values: ['ADDED', 'UPDATED', 'SUPERSEDED', 'DELETED'] as const,
});

/** One change to a memory. Reached only through Memory.history, and scoped like the memory. */
export const MemoryHistory = builder.prismaObject('MemoryHistory', {
  authScopes: ownerOrAdmin,
  fields: (t) => ({
    id: t.exposeID('id'),
    action: t.expose('action', { type: MemoryAction }),
    oldContent: t.exposeString('oldContent', {
      nullable: true,
      description: 'Text before the change; null when added, or once the memory was forgotten.',
    }),
    newContent: t.exposeString('newContent', {
      nullable: true,
      description: 'Text after the change; null when deleted, or once the memory was forgotten.',
    }),
    actorType: t.exposeString('actorType', {
      description: '"worker" (extraction), "user" (the owner) or "admin".',
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

export const MemoryHistoryConnection = builder.connectionObject(
  { type: MemoryHistory, name: 'MemoryHistoryConnection' },
  { name: 'MemoryHistoryEdge' },
);

export interface HistoryArgs {
  first?: number | null;
  after?: string | null;
}

/** Checked per field before batching, so a bad argument fails its field, not the batch. */
export function historyPageOf(args: HistoryArgs) {
  const first = args.first ?? DEFAULT_HISTORY_PAGE;
  if (first < 1 || first > MAX_HISTORY_PAGE) {
    throw badInput(`first must be 1-${MAX_HISTORY_PAGE}.`, { field: 'first' });
  }
  return { first, after: args.after ? parseKeysetCursor(args.after) : undefined };
}

/** The batch behind Memory.history: one query for every memory of the response. */
export async function loadHistoryConnections(
  memoryIds: readonly string[],
  ctx: Context,
  args: HistoryArgs,
) {
  const pages = await historyPages(ctx.prisma, memoryIds, historyPageOf(args));
  return pages.map((page) => {
    const edges = page.rows.map((node) => ({ node, cursor: keysetCursor(node) }));
    return connectionOf(edges, page.hasNextPage, args.after);
  });
}
