import { rememberMemory } from '../../memory/remember.js';
import { viewerOf } from '../auth.js';
import { builder } from '../builder.js';
import { parseGlobalId, parseUserId } from '../ids.js';
import { Memory, MemoryCategory, MemoryLayer } from './memory.js';

const RememberMemoryInput = builder.inputType('RememberMemoryInput', {
  description: 'Something to remember on purpose ("remember that…").',
  fields: (t) => ({
    layer: t.field({ type: MemoryLayer, required: true }),
    instanceId: t.id({ description: 'The persona instance: required for RELATIONSHIP only.' }),
    content: t.string({ required: true, description: 'The memory, as a short statement.' }),
    category: t.field({ type: MemoryCategory, description: 'OTHER when omitted.' }),
    supersedes: t.id({ description: 'A live memory of the same layer that this one corrects.' }),
    userId: t.id({ description: 'Whose memory (admin only for another user).' }),
  }),
});

const RememberMemoryPayload = builder
  .objectRef<{ memory: typeof Memory.$inferType | null; duplicate: boolean }>(
    'RememberMemoryPayload',
  )
  .implement({
    fields: (t) => ({
      memory: t.field({
        type: Memory,
        nullable: true,
        description: 'The new memory, or the live one that already says the same.',
        resolve: (p) => p.memory,
      }),
      duplicate: t.exposeBoolean('duplicate', {
        description: 'True when a live memory of the layer already said this: nothing was added.',
      }),
    }),
  });

builder.mutationField('rememberMemory', (t) =>
  t.field({
    type: RememberMemoryPayload,
    description:
      'Add a memory to a layer (owner, or admin) through the same guard, duplicate check, ' +
      'supersede, write rate and history as extraction.',
    args: { input: t.arg({ type: RememberMemoryInput, required: true }) },
    // Ownership is checked by the domain function (an instance or user the viewer may not
    // manage is NOT_FOUND, so a stranger learns nothing about it).
    resolve: (_root, { input }, ctx) =>
      rememberMemory(ctx.services, viewerOf(ctx), {
        layer: input.layer,
        instanceId:
          input.instanceId != null
            ? parseGlobalId(String(input.instanceId), 'PersonaInstance', 'instanceId')
            : null,
        content: input.content,
        category: input.category,
        supersedes:
          input.supersedes != null
            ? parseGlobalId(String(input.supersedes), 'Memory', 'supersedes')
            : null,
        userId: input.userId != null ? parseUserId(String(input.userId), 'userId') : null,
      }),
  }),
);
