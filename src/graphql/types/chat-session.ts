import { createContextCache } from '@pothos/core';
import DataLoader from 'dataloader';
import {
  type MessagePage,
  type MessagePageRequest,
  sessionMessagePages,
} from '../../chat/history.js';
import { badInput } from '../../errors.js';
import { ownerOrAdmin, visibleRows } from '../auth.js';
import { builder } from '../builder.js';
import type { Context } from '../context.js';
import { connectionOf, keysetCursor, parseKeysetCursor } from '../cursors.js';
import { Message } from './message.js';

const MAX_MESSAGES_PAGE = 100;
const DEFAULT_MESSAGES_PAGE = 20;

const MessageConnection = builder.connectionObject(
  { type: Message, name: 'MessageConnection' },
  { name: 'MessageEdge' },
);

interface PageArgs {
  first?: number | null;
  after?: string | null;
}

/** Checked per field before batching, so a bad argument fails its field, not the batch. */
function messagesPageOf(args: PageArgs) {
  const first = args.first ?? DEFAULT_MESSAGES_PAGE;
  if (first < 1 || first > MAX_MESSAGES_PAGE) {
    throw badInput(`first must be 1-${MAX_MESSAGES_PAGE}.`, { field: 'first' });
  }
  return { first, after: args.after ? parseKeysetCursor(args.after) : undefined };
}

/**
 * Message pages of one request, batched across every session and alias that asks for them
 * (node(id) per session, sessions { messages }): one statement per request.
 */
const messagePages = createContextCache(
  (ctx: Context) =>
    new DataLoader<MessagePageRequest, MessagePage, string>(
      (keys) => sessionMessagePages(ctx.prisma, keys),
      { cacheKeyFn: (key) => JSON.stringify(key) },
    ),
);

export const ChatSession = builder.prismaNode('ChatSession', {
  id: { field: 'id' },
  // node(id): another user's session is not found, like a missing one (see visibleRows).
  findUnique: (id, ctx) => ({ id, ...visibleRows(ctx) }),
  nullable: true,
  authScopes: ownerOrAdmin,
  fields: (t) => ({
    instance: t.relation('instance'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    messages: t.field({
      type: MessageConnection,
      description: `Messages, newest first (first: 1-${MAX_MESSAGES_PAGE}, default ${DEFAULT_MESSAGES_PAGE}).`,
      args: { first: t.arg.int(), after: t.arg.string() },
      resolve: async (session, args, ctx) => {
        const request = { sessionId: session.id, ...messagesPageOf(args) };
        ctx.listBudget.charge(request.first);
        const page = await messagePages(ctx).load(request);
        const edges = page.rows.map((node) => ({ node, cursor: keysetCursor(node) }));
        return connectionOf(edges, page.hasNextPage, args.after);
      },
    }),
  }),
});

builder.queryField('chatSession', (t) =>
  t.prismaField({
    type: 'ChatSession',
    nullable: true,
    description:
      'One of your chat sessions (any user’s, for admins); `messages` are newest first. Null if not found.',
    args: { id: t.arg.globalID({ required: true, for: ChatSession }) },
    resolve: (query, _root, { id }, ctx) =>
      ctx.prisma.chatSession.findUnique({ ...query, where: { id: id.id, ...visibleRows(ctx) } }),
  }),
);
