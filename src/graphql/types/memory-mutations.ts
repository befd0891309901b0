import { encodeGlobalID } from '@pothos/plugin-relay';
import { valueFromASTUntyped } from 'graphql';
import { forbidden, notFound, unauthenticated } from '../../errors.js';
import { deleteMemory, exportMemories, forgetMemories, updateMemory } from '../../memory/manage.js';
import { viewerOf } from '../auth.js';
import { builder } from '../builder.js';
import type { Context } from '../context.js';
import { parseGlobalId, parseUserId } from '../ids.js';
import { Memory, MemoryCategory, MemoryLayer } from './memory.js';

type JsonBuilder = PothosSchemaTypes.SchemaBuilder<
  PothosSchemaTypes.ExtendDefaultTypes<{
    Context: Context;
    Scalars: { JSON: { Input: unknown; Output: unknown } };
  }>
>;

/**
 * Any JSON value (the export document). Declared through a view of the builder that knows the
 * scalar, as admin.ts does for JSONObject: the scalar map lives in builder.ts, and declaring
 * JSON there makes the cast unnecessary.
 */
const Json = (builder as unknown as JsonBuilder).scalarType('JSON', {
  description: 'Any JSON value.',
  serialize: (value) => value,
  parseValue: (value) => value,
  parseLiteral: (ast, variables) => valueFromASTUntyped(ast, variables ?? undefined),
});

/**
 * Field scopes: the owner of the target row passes, anyone else needs `admin`. An unknown id
 * needs `admin` too, so to a stranger a missing row and someone else's are the same NOT_FOUND
 * (hideFromStrangers). The domain functions check again: they are callable without GraphQL.
 */
const ownerOrAdminOf = (ctx: Context, owner: { userId: string } | null) =>
  owner !== null && owner.userId === ctx.viewer?.id ? true : { admin: true };

const memoryOwner = (ctx: Context, memoryId: string | number) =>
  ctx.prisma.memory.findUnique({
    where: { id: parseGlobalId(String(memoryId), 'Memory', 'memoryId') },
    select: { userId: true },
  });

const instanceOwner = (ctx: Context, instanceId: string | number) =>
  ctx.prisma.personaInstance.findUnique({
    where: { id: parseGlobalId(String(instanceId), 'PersonaInstance', 'instanceId') },
    select: { userId: true },
  });

const hideFromStrangers = (ctx: Context, what: string) =>
  ctx.viewer ? notFound(what) : unauthenticated();

/** A userId argument other than the viewer's own is for admins. */
const adminForOtherUser = (ctx: Context, userId: string | number | null | undefined) =>
  userId != null && parseUserId(String(userId), 'userId') !== ctx.viewer?.id
    ? { admin: true }
    : true;

const UpdateMemoryInput = builder.inputType('UpdateMemoryInput', {
  fields: (t) => ({
    memoryId: t.id({ required: true }),
    content: t.string({ description: 'New text: re-embedded; must differ from live memories.' }),
    category: t.field({ type: MemoryCategory }),
  }),
});

const UpdateMemoryPayload = builder
  .objectRef<{ memory: typeof Memory.$inferType }>('UpdateMemoryPayload')
  .implement({ fields: (t) => ({ memory: t.field({ type: Memory, resolve: (p) => p.memory }) }) });

const DeleteMemoryInput = builder.inputType('DeleteMemoryInput', {
  fields: (t) => ({ memoryId: t.id({ required: true }) }),
});

const DeleteMemoryPayload = builder
  .objectRef<{ deletedMemoryId: string }>('DeleteMemoryPayload')
  .implement({ fields: (t) => ({ deletedMemoryId: t.exposeID('deletedMemoryId') }) });

const ForgetMemoriesInput = builder.inputType('ForgetMemoriesInput', {
  description:
    'What to forget: one layer, one persona instance, or every memory of the user (`everything: true`, and nothing else).',
  fields: (t) => ({
    layer: t.field({ type: MemoryLayer }),
    instanceId: t.id({ description: "One persona instance's relationship memories." }),
    userId: t.id({ description: 'Whose memories (admin only for another user).' }),
    everything: t.boolean({
      description:
        'Required, true, to forget every memory (neither layer nor instanceId): an omitted instanceId never erases everything.',
    }),
  }),
});

const ForgetMemoriesPayload = builder
  .objectRef<{ deletedCount: number }>('ForgetMemoriesPayload')
  .implement({ fields: (t) => ({ deletedCount: t.exposeInt('deletedCount') }) });

builder.mutationFields((t) => ({
  updateMemory: t.field({
    type: UpdateMemoryPayload,
    description: 'Edit a live memory (owner or admin); the change is kept in its history.',
    args: { input: t.arg({ type: UpdateMemoryInput, required: true }) },
    authScopes: async (_root, { input }, ctx) =>
      ownerOrAdminOf(ctx, await memoryOwner(ctx, input.memoryId)),
    unauthorizedError: (_root, _args, ctx) => hideFromStrangers(ctx, 'Memory'),
    resolve: async (_root, { input }, ctx) => ({
      memory: await updateMemory(
        ctx.services,
        viewerOf(ctx),
        parseGlobalId(String(input.memoryId), 'Memory', 'memoryId'),
        { content: input.content, category: input.category },
      ),
    }),
  }),
  deleteMemory: t.field({
    type: DeleteMemoryPayload,
    description: 'Delete one memory (owner or admin); its history keeps a DELETED entry.',
    args: { input: t.arg({ type: DeleteMemoryInput, required: true }) },
    authScopes: async (_root, { input }, ctx) =>
      ownerOrAdminOf(ctx, await memoryOwner(ctx, input.memoryId)),
    unauthorizedError: (_root, _args, ctx) => hideFromStrangers(ctx, 'Memory'),
    resolve: async (_root, { input }, ctx) => {
      const id = parseGlobalId(String(input.memoryId), 'Memory', 'memoryId');
      await deleteMemory(ctx.prisma, viewerOf(ctx), id, ctx.services.memoryEvents);
      return { deletedMemoryId: encodeGlobalID('Memory', id) };
    },
  }),
  forgetMemories: t.field({
    type: ForgetMemoriesPayload,
    description:
      'Delete every memory in a scope and erase their text from history (the history keeps ' +
      'only that changes happened). With `everything: true` (and no layer, no instance): every memory of the user.',
    args: { input: t.arg({ type: ForgetMemoriesInput, required: true }) },
    authScopes: async (_root, { input }, ctx) =>
      input.instanceId != null
        ? ownerOrAdminOf(ctx, await instanceOwner(ctx, input.instanceId))
        : adminForOtherUser(ctx, input.userId),
    unauthorizedError: (_root, { input }, ctx) =>
      ctx.viewer && input.instanceId == null
        ? forbidden('Only admins may act on another user.')
        : hideFromStrangers(ctx, 'Persona instance'),
    resolve: async (_root, { input }, ctx) => ({
      deletedCount: await forgetMemories(
        ctx.prisma,
        viewerOf(ctx),
        {
          layer: input.layer,
          instanceId:
            input.instanceId != null
              ? parseGlobalId(String(input.instanceId), 'PersonaInstance', 'instanceId')
              : null,
          userId: input.userId != null ? parseUserId(String(input.userId), 'userId') : null,
          everything: input.everything,
        },
        ctx.services.memoryEvents,
      ),
    }),
  }),
}));

builder.queryField('exportMemories', (t) =>
  t.field({
    type: Json,
    description:
      'Everything remembered about a user as one JSON document (the `npm run export` format, ' +
      'version 2): both layers, each memory with its history, the history of deleted ones, and ' +
      'every chat session with its messages.',
    args: { userId: t.arg.id({ description: 'Admin only for another user.' }) },
    authScopes: (_root, { userId }, ctx) => adminForOtherUser(ctx, userId),
    resolve: (_root, { userId }, ctx) =>
      exportMemories(
        ctx.prisma,
        viewerOf(ctx),
        userId != null ? parseUserId(String(userId), 'userId') : null,
      ),
  }),
);
