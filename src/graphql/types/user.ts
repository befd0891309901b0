import { ensureUser } from '../../auth/users.js';
import { viewerOf } from '../auth.js';
import { builder } from '../builder.js';

export const User = builder.prismaNode('User', {
  id: { field: 'id' },
  // node(id): another user is not found, like a missing one (see visibleRows).
  findUnique: (id, ctx) => (ctx.viewer?.isAdmin ? { id } : { id, AND: [{ id: viewerOf(ctx).id }] }),
  nullable: true,
  authScopes: (user, ctx) => (user.id === ctx.viewer?.id ? true : { admin: true }),
  fields: (t) => ({
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    instances: t.relatedConnection(
      'instances',
      {
        cursor: 'id',
        maxSize: 100,
        description: 'Persona instances (one per persona the user chatted with), newest first.',
        query: () => ({ orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] }),
      },
      { name: 'PersonaInstanceConnection' },
      { name: 'PersonaInstanceEdge' },
    ),
    sessions: t.relatedConnection(
      'sessions',
      {
        cursor: 'id',
        maxSize: 100,
        description: 'Chat sessions, newest first.',
        query: () => ({ orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] }),
      },
      { name: 'ChatSessionConnection' },
      { name: 'ChatSessionEdge' },
    ),
  }),
});

builder.queryField('viewer', (t) =>
  t.prismaField({
    type: 'User',
    description: 'The authenticated user.',
    resolve: async (query, _root, _args, ctx) => {
      const where = { id: viewerOf(ctx).id };
      const user = await ctx.prisma.user.findUnique({ ...query, where });
      if (user) return user;
      // Erased on another machine (or by hand) while this one's provisioning cache still knew
      // the id: the token starts over with a fresh account, as on first sign-in.
      await ensureUser(ctx.prisma, where.id);
      return ctx.prisma.user.findUniqueOrThrow({ ...query, where });
    },
  }),
);
