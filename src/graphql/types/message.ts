import { ownerOrAdmin, visibleRows } from '../auth.js';
import { builder } from '../builder.js';

export const MessageRole = builder.enumType('MessageRole', {
  values: ['USER', 'ASSISTANT'] as const,
});

export const Message = builder.prismaNode('Message', {
  id: { field: 'id' },
  // node(id): another user's message is not found, like a missing one (see visibleRows).
  findUnique: (id, ctx) => ({ id, ...visibleRows(ctx) }),
  nullable: true,
  authScopes: ownerOrAdmin,
  fields: (t) => ({
    role: t.expose('role', { type: MessageRole }),
    content: t.exposeString('content'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    model: t.exposeString('model', { nullable: true, description: 'Model that wrote a reply.' }),
    promptTokens: t.exposeInt('promptTokens', { nullable: true }),
    completionTokens: t.exposeInt('completionTokens', { nullable: true }),
  }),
});
