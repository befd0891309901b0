import { GraphQLError, valueFromASTUntyped } from 'graphql';
import { memoryStats } from '../../memory/stats.js';
import { createPersona, setPersonaArchived, updatePersona } from '../../personas/manage.js';
import { actorOf } from '../auth.js';
import { builder } from '../builder.js';
import type { Context } from '../context.js';
import { parseGlobalId, parseUserId } from '../ids.js';
import { MemoryCategory, MemoryLayer } from './memory.js';
import { Persona } from './persona.js';

/**
 * Admin-only queries and mutations: memory statistics and persona management. Everything here
 * carries `authScopes: { admin: true }`; the domain functions do the work.
 */

type JsonObject = { [key: string]: unknown };
type JsonBuilder = PothosSchemaTypes.SchemaBuilder<
  PothosSchemaTypes.ExtendDefaultTypes<{
    Context: Context;
    Scalars: { JSONObject: { Input: JsonObject; Output: unknown } };
  }>
>;

function jsonObject(value: unknown): JsonObject {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    return value as JsonObject;
  }
  throw new GraphQLError('JSONObject must be a JSON object.', {
    extensions: { code: 'BAD_USER_INPUT' },
  });
}

/**
 * A JSON object (persona traits). Declared through a view of the builder that knows the
 * scalar, because the builder's scalar map lives in builder.ts; declaring it there makes the
 * cast unnecessary.
 */
export const JsonObject = (builder as unknown as JsonBuilder).scalarType('JSONObject', {
  description: 'A JSON object.',
  serialize: (value) => value,
  parseValue: jsonObject,
  parseLiteral: (ast, variables) => jsonObject(valueFromASTUntyped(ast, variables ?? undefined)),
});

// Persona fields only admins see: the prompt is the product's secret sauce. Nullable, so a
// non-admin who selects them loses these fields (FORBIDDEN), not the persona or the whole list.
builder.prismaObjectFields(Persona, (t) => ({
  systemPrompt: t.exposeString('systemPrompt', { nullable: true, authScopes: { admin: true } }),
  traits: t.field({
    type: JsonObject,
    nullable: true,
    authScopes: { admin: true },
    resolve: (p) => p.traits,
  }),
}));

const CategoryCount = builder
  .objectRef<{ category: typeof MemoryCategory.$inferType; count: number }>('MemoryCategoryCount')
  .implement({
    fields: (t) => ({
      category: t.expose('category', { type: MemoryCategory }),
      count: t.exposeInt('count'),
    }),
  });

const ModelCount = builder
  .objectRef<{ model: string; count: number }>('EmbeddingModelCount')
  .implement({
    fields: (t) => ({ model: t.exposeString('model'), count: t.exposeInt('count') }),
  });

type LayerStatsShape = Awaited<ReturnType<typeof memoryStats>>['profile'];

const LayerStats = builder.objectRef<LayerStatsShape>('MemoryLayerStats').implement({
  fields: (t) => ({
    layer: t.expose('layer', { type: MemoryLayer }),
    total: t.exposeInt('total', {
      description: 'Every row, superseded and expired ones included.',
    }),
    live: t.exposeInt('live', { description: 'Rows recall can return.' }),
    superseded: t.exposeInt('superseded'),
    expired: t.exposeInt('expired', { description: 'Not superseded, but past their expiry.' }),
    lastWriteAt: t.expose('lastWriteAt', {
      type: 'DateTime',
      nullable: true,
      description: 'Latest insert, update, supersede or delete in the layer.',
    }),
    byCategory: t.field({
      type: [CategoryCount],
      description: 'Live memories per category (every category, zeros included).',
      resolve: (s) => s.byCategory,
    }),
    byEmbeddingModel: t.field({
      type: [ModelCount],
      description: 'All rows per embedding model, most used first (see `npm run reembed`).',
      resolve: (s) => s.byEmbeddingModel,
    }),
  }),
});

const MemoryStats = builder
  .objectRef<Awaited<ReturnType<typeof memoryStats>>>('MemoryStats')
  .implement({
    fields: (t) => ({
      profile: t.field({ type: LayerStats, resolve: (s) => s.profile }),
      relationship: t.field({ type: LayerStats, resolve: (s) => s.relationship }),
    }),
  });

builder.queryFields((t) => ({
  memoryStats: t.field({
    type: MemoryStats,
    authScopes: { admin: true },
    description:
      'Memory statistics per layer of one user, or of everyone without `userId` (admin).',
    args: { userId: t.arg.id({ required: false, description: 'A User id or the raw UUID.' }) },
    resolve: (_root, args, ctx) =>
      memoryStats(
        ctx.prisma,
        args.userId != null ? parseUserId(String(args.userId), 'userId') : null,
      ),
  }),
  allPersonas: t.prismaConnection(
    {
      type: 'Persona',
      cursor: 'id',
      maxSize: 100,
      defaultSize: 20,
      authScopes: { admin: true },
      description: 'Every persona, archived ones included, oldest first (admin).',
      resolve: (query, _root, _args, ctx) =>
        ctx.prisma.persona.findMany({ ...query, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] }),
    },
    { name: 'AdminPersonaConnection' },
    { name: 'AdminPersonaEdge' },
  ),
}));

const personaFields = {
  name: 'Display name (1-100 characters).',
  description: 'Shown to users (1-2000 characters).',
  greeting: 'First line of a new chat (1-2000 characters).',
  systemPrompt: 'Instructions for the chat model (1-20000 characters).',
} as const;

const CreatePersonaInput = builder.inputType('CreatePersonaInput', {
  fields: (t) => ({
    slug: t.string({ required: true, description: 'Stable key, e.g. "night-owl" (unique).' }),
    name: t.string({ required: true, description: personaFields.name }),
    description: t.string({ required: true, description: personaFields.description }),
    greeting: t.string({ required: true, description: personaFields.greeting }),
    systemPrompt: t.string({ required: true, description: personaFields.systemPrompt }),
    traits: t.field({
      type: JsonObject,
      required: false,
      description: 'A JSON object (<= 10 kB).',
    }),
  }),
});

const UpdatePersonaInput = builder.inputType('UpdatePersonaInput', {
  description: 'Omitted (or null) fields keep their value. The slug never changes.',
  fields: (t) => ({
    personaId: t.id({ required: true }),
    name: t.string({ required: false, description: personaFields.name }),
    description: t.string({ required: false, description: personaFields.description }),
    greeting: t.string({ required: false, description: personaFields.greeting }),
    systemPrompt: t.string({ required: false, description: personaFields.systemPrompt }),
    traits: t.field({ type: JsonObject, required: false, description: 'Replaces all traits.' }),
  }),
});

const personaRefInput = (name: string) =>
  builder.inputType(name, { fields: (t) => ({ personaId: t.id({ required: true }) }) });
const ArchivePersonaInput = personaRefInput('ArchivePersonaInput');
const UnarchivePersonaInput = personaRefInput('UnarchivePersonaInput');

type PersonaRow = typeof Persona.$inferType;
const payload = (name: string) =>
  builder.objectRef<{ persona: PersonaRow }>(name).implement({
    fields: (t) => ({ persona: t.field({ type: Persona, resolve: (p) => p.persona }) }),
  });

const personaId = (id: string | number) => parseGlobalId(String(id), 'Persona', 'personaId');
const deps = (ctx: Context) => ({ prisma: ctx.prisma, logger: ctx.services.logger });

builder.mutationFields((t) => ({
  createPersona: t.field({
    type: payload('CreatePersonaPayload'),
    authScopes: { admin: true },
    description: 'Add a persona users can chat with (admin).',
    args: { input: t.arg({ type: CreatePersonaInput, required: true }) },
    resolve: async (_root, { input }, ctx) => ({
      persona: await createPersona(deps(ctx), actorOf(ctx), input),
    }),
  }),
  updatePersona: t.field({
    type: payload('UpdatePersonaPayload'),
    authScopes: { admin: true },
    description: 'Edit a persona (admin). Existing chats use the new prompt from their next turn.',
    args: { input: t.arg({ type: UpdatePersonaInput, required: true }) },
    resolve: async (_root, { input: { personaId: id, ...patch } }, ctx) => ({
      persona: await updatePersona(deps(ctx), actorOf(ctx), personaId(id), patch),
    }),
  }),
  archivePersona: t.field({
    type: payload('ArchivePersonaPayload'),
    authScopes: { admin: true },
    description: 'Hide a persona from new chats; existing chats and memories stay (admin).',
    args: { input: t.arg({ type: ArchivePersonaInput, required: true }) },
    resolve: async (_root, { input }, ctx) => ({
      persona: await setPersonaArchived(deps(ctx), actorOf(ctx), personaId(input.personaId), true),
    }),
  }),
  unarchivePersona: t.field({
    type: payload('UnarchivePersonaPayload'),
    authScopes: { admin: true },
    description: 'Make an archived persona available again (admin).',
    args: { input: t.arg({ type: UnarchivePersonaInput, required: true }) },
    resolve: async (_root, { input }, ctx) => ({
      persona: await setPersonaArchived(deps(ctx), actorOf(ctx), personaId(input.personaId), false),
    }),
  }),
}));
