import { builder } from '../builder.js';

export const Persona = builder.prismaNode('Persona', {
  id: { field: 'id' },
  // node(id) of a missing persona is null, not an error.
  nullable: true,
  authScopes: { user: true, admin: true },
  fields: (t) => ({
    slug: t.exposeString('slug'),
    name: t.exposeString('name'),
    description: t.exposeString('description'),
    greeting: t.exposeString('greeting'),
    archived: t.boolean({ resolve: (p) => p.archivedAt !== null }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

builder.queryField('personas', (t) =>
  t.prismaConnection(
    {
      type: 'Persona',
      cursor: 'id',
      description: 'Personas a user can chat with (archived ones are left out).',
      maxSize: 100,
      defaultSize: 20,
      resolve: (query, _root, _args, ctx) =>
        ctx.prisma.persona.findMany({
          ...query,
          where: { archivedAt: null },
          orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
        }),
    },
    { name: 'PersonaConnection' },
    { name: 'PersonaEdge' },
  ),
);
