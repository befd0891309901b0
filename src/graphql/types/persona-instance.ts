import { ownerOrAdmin, visibleRows } from '../auth.js';
import { builder } from '../builder.js';

export const PersonaInstance = builder.prismaNode('PersonaInstance', {
  id: { field: 'id' },
  // node(id): another user's instance is not found, like a missing one (see visibleRows).
  findUnique: (id, ctx) => ({ id, ...visibleRows(ctx) }),
  nullable: true,
  description: "One user's relationship with one persona; relationship memories hang off it.",
  authScopes: ownerOrAdmin,
  fields: (t) => ({
    persona: t.relation('persona'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

builder.queryField('personaInstance', (t) =>
  t.prismaField({
    type: 'PersonaInstance',
    nullable: true,
    description: 'One of your persona instances (any user’s, for admins); null if not found.',
    args: { id: t.arg.globalID({ required: true, for: PersonaInstance }) },
    resolve: (query, _root, { id }, ctx) =>
      ctx.prisma.personaInstance.findUnique({
        ...query,
        where: { id: id.id, ...visibleRows(ctx) },
      }),
  }),
);
