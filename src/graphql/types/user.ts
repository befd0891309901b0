import { ensureUser } from '../../auth/users.js';
import { setUserTimeZone } from '../../time/user-zone.js';
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
    timeZone: t.exposeString('timeZone', {
      description:
        'IANA time zone ("UTC" until set): today in prompts, date resolution in extraction, ' +
        "when follow-ups are due. Set by updateViewer or a token's `zoneinfo` claim.",
    }),
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

const UpdateViewerInput = builder.inputType('UpdateViewerInput', {
  fields: (t) => ({
    timeZone: t.string({
      required: false,
      description: 'IANA time zone, e.g. "Pacific/Auckland" (fixed offsets are refused).',
    }),
  }),
});

const UpdateViewerPayload = builder
  .objectRef<{ viewer: typeof User.$inferType }>('UpdateViewerPayload')
  .implement({ fields: (t) => ({ viewer: t.field({ type: User, resolve: (p) => p.viewer }) }) });

builder.mutationField('updateViewer', (t) =>
  t.field({
    type: UpdateViewerPayload,
    description: "Updates the authenticated user's settings (for now, the time zone).",
    args: { input: t.arg({ type: UpdateViewerInput, required: true }) },
    resolve: async (_root, { input }, ctx) => {
      const viewer = viewerOf(ctx);
      if (input.timeZone != null) {
        await setUserTimeZone(ctx.prisma, viewer.id, input.timeZone);
      }
      return { viewer: await ctx.prisma.user.findUniqueOrThrow({ where: { id: viewer.id } }) };
    },
  }),
);
