import { forbidden } from '../../errors.js';
import { dismissFollowUp, effectiveState, whereEffectiveState } from '../../memory/follow-ups.js';
import { ownerOrAdmin, viewerOf, visibleRows } from '../auth.js';
import { builder } from '../builder.js';
import { parseGlobalId, parseUserId } from '../ids.js';

export const FollowUpState = builder.enumType('FollowUpState', {
  description: 'Where a follow-up (open thread) is in its life.',
  values: {
    OPEN: { description: 'Waiting: not due yet, or due and not asked yet.' },
    ASKED: { description: "A persona's reply asked about it; it is never asked again." },
    CLOSED: { description: 'The user answered, or dismissed it (see closeReason).' },
    EXPIRED: { description: 'Its window (FOLLOW_UP_WINDOW_DAYS after due) passed unanswered.' },
  } as const,
});

export const FollowUpCloseReason = builder.enumType('FollowUpCloseReason', {
  values: ['ANSWERED', 'DISMISSED'] as const,
});

export const FollowUp = builder.prismaNode('FollowUp', {
  id: { field: 'id' },
  // node(id): another user's thread is not found, like a missing one (see visibleRows).
  findUnique: (id, ctx) => ({ id, ...visibleRows(ctx) }),
  nullable: true,
  description:
    'An event the user said would happen (a memory with a future occurredAt): once due, one ' +
    'persona asks how it went.',
  authScopes: ownerOrAdmin,
  fields: (t) => ({
    state: t.field({
      type: FollowUpState,
      resolve: (f, _args, ctx) => effectiveState(f, ctx.services.now()),
    }),
    closeReason: t.expose('closeReason', { type: FollowUpCloseReason, nullable: true }),
    dueAt: t.expose('dueAt', {
      type: 'DateTime',
      description: "From when it may be asked: the start of the day after the event, user's zone.",
    }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime' }),
    askedAt: t.expose('askedAt', { type: 'DateTime', nullable: true }),
    closedAt: t.expose('closedAt', { type: 'DateTime', nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    memory: t.relation('memory', { description: 'The event memory it follows up on.' }),
    instance: t.relation('instance', {
      nullable: true,
      description: 'The persona instance that may ask (relationship layer); null: any persona.',
    }),
  }),
});

builder.queryField('followUps', (t) =>
  t.prismaConnection(
    {
      type: 'FollowUp',
      cursor: 'id',
      maxSize: 100,
      defaultSize: 20,
      description:
        "The viewer's follow-ups, by due date (oldest first). `userId` is for admins only. " +
        '`states` filters by state as of now (default: all).',
      args: {
        userId: t.arg.id({ required: false }),
        states: t.arg({ type: [FollowUpState], required: false }),
      },
      resolve: (query, _root, args, ctx) => {
        const viewer = viewerOf(ctx);
        const userId = args.userId != null ? parseUserId(String(args.userId), 'userId') : viewer.id;
        if (userId !== viewer.id && !viewer.isAdmin) {
          throw forbidden('Only admins may read other users.');
        }
        const states = args.states?.length
          ? whereEffectiveState(args.states, ctx.services.now())
          : {};
        return ctx.prisma.followUp.findMany({
          ...query,
          where: { userId, ...states },
          orderBy: [{ dueAt: 'asc' }, { id: 'asc' }],
        });
      },
    },
    { name: 'FollowUpConnection' },
    { name: 'FollowUpEdge' },
  ),
);

const DismissFollowUpInput = builder.inputType('DismissFollowUpInput', {
  fields: (t) => ({ followUpId: t.id({ required: true }) }),
});

const DismissFollowUpPayload = builder
  .objectRef<{ followUp: typeof FollowUp.$inferType }>('DismissFollowUpPayload')
  .implement({
    fields: (t) => ({ followUp: t.field({ type: FollowUp, resolve: (p) => p.followUp }) }),
  });

builder.mutationField('dismissFollowUp', (t) =>
  t.field({
    type: DismissFollowUpPayload,
    description:
      'Closes a follow-up so no persona asks about it (its memory stays). Idempotent; a closed ' +
      'or expired one is returned unchanged.',
    args: { input: t.arg({ type: DismissFollowUpInput, required: true }) },
    resolve: async (_root, { input }, ctx) => {
      const id = parseGlobalId(String(input.followUpId), 'FollowUp', 'followUpId');
      const followUp = await dismissFollowUp(ctx.prisma, viewerOf(ctx), id, ctx.services.now());
      return { followUp };
    },
  }),
);
