import { encodeGlobalID } from '@pothos/plugin-relay';
import { forbidden } from '../../errors.js';
import type { DeliveredMemoryEvent } from '../../memory/events.js';
import { viewerOf } from '../auth.js';
import { builder } from '../builder.js';
import { parseUserId } from '../ids.js';
import { Memory, MemoryLayer } from './memory.js';

const MemoryEventKind = builder.enumType('MemoryEventKind', {
  values: {
    ADDED: { description: 'A new memory (extracted, or remembered explicitly).' },
    UPDATED: { description: 'Its text or category was edited.' },
    SUPERSEDED: { description: 'A newer memory corrects it (see Memory.supersededBy).' },
    DELETED: { description: 'It was deleted.' },
    FORGOTTEN: { description: 'A whole scope was forgotten (forgetMemories); no memoryId.' },
  } as const,
});

const MemoryEvent = builder.objectRef<DeliveredMemoryEvent>('MemoryEvent').implement({
  description: 'A change to the memories of the watched user.',
  fields: (t) => ({
    kind: t.field({ type: MemoryEventKind, resolve: (e) => e.kind }),
    memoryId: t.id({
      nullable: true,
      description: 'The Memory id; null for FORGOTTEN.',
      resolve: (e) => (e.memoryId ? encodeGlobalID('Memory', e.memoryId) : null),
    }),
    memory: t.field({
      type: Memory,
      nullable: true,
      description:
        'The memory as it is now (read when the event is delivered); null once it is gone.',
      // Re-read with the watched user in the filter: an event carries ids only, and a memory
      // id never resolves to another user's row here.
      resolve: (e, _args, ctx) =>
        e.memoryId
          ? ctx.prisma.memory.findFirst({ where: { id: e.memoryId, userId: e.userId } })
          : null,
    }),
    userId: t.id({ resolve: (e) => encodeGlobalID('User', e.userId) }),
    instanceId: t.id({
      nullable: true,
      description: "The persona instance of a relationship memory (or of a forgotten instance's).",
      resolve: (e) => (e.instanceId ? encodeGlobalID('PersonaInstance', e.instanceId) : null),
    }),
    layer: t.field({
      type: MemoryLayer,
      nullable: true,
      description: 'The layer; for FORGOTTEN null means both.',
      resolve: (e) =>
        e.kind === 'FORGOTTEN' ? (e.layer ?? null) : e.instanceId ? 'RELATIONSHIP' : 'PROFILE',
    }),
    deletedCount: t.int({
      nullable: true,
      description: 'FORGOTTEN: how many memories were deleted.',
      resolve: (e) => e.count ?? null,
    }),
    missedBefore: t.int({
      description:
        'Events dropped just before this one because this subscriber fell behind (MEMORY_EVENTS_BUFFER): re-read the memory list when it is not 0.',
      resolve: (e) => e.missedBefore,
    }),
    at: t.field({ type: 'DateTime', resolve: (e) => new Date(e.at) }),
  }),
});

builder.subscriptionFields((t) => ({
  memoryEvents: t.field({
    type: MemoryEvent,
    description:
      "Live changes to the viewer's memories (or, for admins, any user's): added, updated, " +
      'superseded, deleted, forgotten, including those the extraction worker writes in ' +
      'another process. Best effort: nothing is replayed after a reconnect.',
    args: { userId: t.arg.id({ description: 'Whose memories (admins only for another user).' }) },
    subscribe: (_root, { userId }, ctx) => {
      const viewer = viewerOf(ctx);
      const target = userId != null ? parseUserId(String(userId), 'userId') : viewer.id;
      if (target !== viewer.id && !viewer.isAdmin) {
        throw forbidden("Only admins may watch another user's memories.");
      }
      return ctx.services.memoryEvents.subscribe(target);
    },
    resolve: (event: DeliveredMemoryEvent) => event,
  }),
}));
