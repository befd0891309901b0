import { encodeGlobalID } from '@pothos/plugin-relay';
import { type ErasureReceipt, eraseUser } from '../../account/erase.js';
import { deleteChatSession } from '../../chat/delete-session.js';
import { badInput, notFound, unauthenticated } from '../../errors.js';
import { actorOf, viewerOf } from '../auth.js';
import { builder } from '../builder.js';
import type { Context } from '../context.js';
import { parseGlobalId, parseUserId } from '../ids.js';

/**
 * Data rights: account erasure (the viewer's own, or any user's for admins) and chat session
 * deletion. Forgetting memories and the export live with the memory mutations.
 */

/** Typed by the client on purpose: no default value, no boolean a form could send by mistake. */
export const ERASE_CONFIRMATION = 'ERASE MY ACCOUNT';

const ErasedCount = builder.objectRef<ErasureReceipt['deleted'][number]>('ErasedCount').implement({
  description: 'Rows of one kind deleted by an erasure.',
  fields: (t) => ({
    kind: t.exposeString('kind', {
      description:
        'The table: messages, chat_sessions, memories, memory_history, persona_instances, jobs, users (and any table added later).',
    }),
    count: t.exposeInt('count'),
  }),
});

const AccountErasure = builder.objectRef<ErasureReceipt>('AccountErasure').implement({
  description: 'The receipt of an account erasure.',
  fields: (t) => ({
    userId: t.exposeID('userId'),
    erasedAt: t.expose('erasedAt', { type: 'DateTime' }),
    deleted: t.field({ type: [ErasedCount], resolve: (r) => r.deleted }),
  }),
});

const EraseMyAccountInput = builder.inputType('EraseMyAccountInput', {
  fields: (t) => ({
    confirmation: t.string({
      required: true,
      description: `Must be exactly "${ERASE_CONFIRMATION}".`,
    }),
  }),
});

const EraseUserInput = builder.inputType('EraseUserInput', {
  fields: (t) => ({
    userId: t.id({ required: true, description: 'The user (their token `sub`).' }),
  }),
});

const DeleteChatSessionInput = builder.inputType('DeleteChatSessionInput', {
  fields: (t) => ({ sessionId: t.id({ required: true }) }),
});

const DeleteChatSessionPayload = builder
  .objectRef<{ sessionId: string; messages: number; unlinkedMemories: number }>(
    'DeleteChatSessionPayload',
  )
  .implement({
    fields: (t) => ({
      deletedSessionId: t.id({ resolve: (p) => encodeGlobalID('ChatSession', p.sessionId) }),
      deletedMessages: t.exposeInt('messages'),
      unlinkedMemories: t.exposeInt('unlinkedMemories', {
        description: 'Memories learnt in the session: kept, their source link cleared.',
      }),
    }),
  });

const sessionOwner = (ctx: Context, sessionId: string | number) =>
  ctx.prisma.chatSession.findUnique({
    where: { id: parseGlobalId(String(sessionId), 'ChatSession', 'sessionId') },
    select: { userId: true },
  });

builder.mutationFields((t) => ({
  eraseMyAccount: t.field({
    type: AccountErasure,
    description:
      'Erase your account: every message, chat session, persona instance, memory (with its ' +
      'history) and job of yours, and your user row, in one transaction. Cannot be undone. ' +
      'A token of yours that is still valid afterwards gets a new, empty account.',
    args: { input: t.arg({ type: EraseMyAccountInput, required: true }) },
    resolve: (_root, { input }, ctx) => {
      if (input.confirmation !== ERASE_CONFIRMATION) {
        throw badInput(`To erase your account, set confirmation to "${ERASE_CONFIRMATION}".`, {
          field: 'confirmation',
        });
      }
      return eraseUser(ctx.prisma, viewerOf(ctx).id);
    },
  }),
  eraseUser: t.field({
    type: AccountErasure,
    description: 'Admin: erase a user as eraseMyAccount does. Erasing an unknown user is a no-op.',
    args: { input: t.arg({ type: EraseUserInput, required: true }) },
    authScopes: { admin: true },
    resolve: (_root, { input }, ctx) =>
      eraseUser(ctx.prisma, parseUserId(String(input.userId), 'userId')),
  }),
  deleteChatSession: t.field({
    type: DeleteChatSessionPayload,
    description:
      'Delete a chat session and its messages (owner or admin). Memories learnt in it stay, ' +
      'unlinked from it; use forgetMemories to remove those.',
    args: { input: t.arg({ type: DeleteChatSessionInput, required: true }) },
    authScopes: async (_root, { input }, ctx) => {
      const owner = await sessionOwner(ctx, input.sessionId);
      return owner !== null && owner.userId === ctx.viewer?.id ? true : { admin: true };
    },
    unauthorizedError: (_root, _args, ctx) =>
      ctx.viewer ? notFound('Chat session') : unauthenticated(),
    resolve: (_root, { input }, ctx) =>
      deleteChatSession(
        ctx.prisma,
        // Not viewerOf: a server-to-server caller (admin scope, no user) may delete sessions too.
        { id: actorOf(ctx), isAdmin: ctx.viewer?.isAdmin === true },
        parseGlobalId(String(input.sessionId), 'ChatSession', 'sessionId'),
      ),
  }),
}));
