import { ownerOrAdmin } from '../auth.js';
import { builder } from '../builder.js';

export const PersonaInstance = builder.prismaNode('PersonaInstance', {
  id: { field: 'id' },
  description: "One user's relationship with one persona; relationship memories hang off it.",
  authScopes: ownerOrAdmin,
  fields: (t) => ({
    persona: t.relation('persona'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});
