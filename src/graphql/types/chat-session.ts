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
