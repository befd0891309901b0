import { ownerOrAdmin } from '../auth.js';
import { builder } from '../builder.js';

export const ChatSession = builder.prismaNode('ChatSession', {
  id: { field: 'id' },
  authScopes: ownerOrAdmin,
  fields: (t) => ({
    instance: t.relation('instance'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    messages: t.relatedConnection(
      'messages',
      {
        cursor: 'id',
        maxSize: 100,
        description: 'Messages, newest first.',
        query: () => ({ orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] }),
      },
      { name: 'MessageConnection' },
      { name: 'MessageEdge' },
    ),
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
      ctx.prisma.chatSession.findUnique({ ...query, where: { id: id.id } }),
  }),
);
