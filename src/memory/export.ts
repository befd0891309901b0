import type { PrismaClient } from '@prisma/client';

/**
 * Everything the server holds about one user, as plain JSON (data portability): both memory
 * layers, each memory with its audit history, the history of memories deleted since (history
 * outlives deletes, and it still holds their content), and every chat session with its
 * messages. Never the embeddings: they are derived data, large, and meaningless outside this
 * deployment's model. The shape is documented in the README ("Data rights"); any change to it
 * bumps EXPORT_VERSION (2 added `chats`, `followUps` and each memory's `occurredAt`).
 *
 * Seven queries whatever the size (user, instances, memories, history, sessions, messages,
 * follow-ups), grouped in memory.
 */
export const EXPORT_FORMAT = 'companion-memory-export';
export const EXPORT_VERSION = 2;

export interface ExportedHistory {
  id: string;
  action: string;
  oldContent: string | null;
  newContent: string | null;
  actorType: string;
  actorId: string | null;
  jobId: string | null;
  createdAt: string;
}

export interface ExportedMemory {
  id: string;
  content: string;
  category: string;
  confidence: number | null;
  embeddingModel: string;
  sourceSessionId: string | null;
  sourceMessageId: string | null;
  createdAt: string;
  updatedAt: string;
  supersededAt: string | null;
  supersededBy: string | null;
  expiresAt: string | null;
  /** When the event happened or will happen (null: timeless). */
  occurredAt: string | null;
  history: ExportedHistory[];
}

/** An open thread (README "Time and follow-ups"), with the memory it follows up on. */
export interface ExportedFollowUp {
  id: string;
  memoryId: string;
  instanceId: string | null;
  state: string;
  closeReason: string | null;
  dueAt: string;
  expiresAt: string;
  askedAt: string | null;
  closedAt: string | null;
  createdAt: string;
}

export interface ExportedRelationship {
  instanceId: string;
  persona: { id: string; slug: string; name: string };
  createdAt: string;
  memories: ExportedMemory[];
}

export interface ExportedMessage {
  id: string;
  role: 'USER' | 'ASSISTANT';
  content: string;
  createdAt: string;
  /** On a user message: the client's idempotency key. */
  clientMessageId: string | null;
  /** On a reply: the user message it answers. */
  replyToId: string | null;
  /** On a reply: the model that wrote it. */
  model: string | null;
}

export interface ExportedChat {
  sessionId: string;
  instanceId: string;
  createdAt: string;
  /** Oldest first. */
  messages: ExportedMessage[];
}

export interface UserMemoryExport {
  format: typeof EXPORT_FORMAT;
  version: typeof EXPORT_VERSION;
  exportedAt: string;
  user: { id: string; createdAt: string; timeZone: string };
  /** Profile layer: facts every persona may know. */
  profile: ExportedMemory[];
  /** Relationship layer, one entry per persona instance (with or without memories). */
  relationships: ExportedRelationship[];
  /** History of memories that no longer exist (deleted or forgotten). */
  deletedMemories: {
    memoryId: string;
    layer: 'PROFILE' | 'RELATIONSHIP';
    instanceId: string | null;
    history: ExportedHistory[];
  }[];
  /** Chat sessions, oldest first, each with its messages (its persona: see relationships). */
  chats: ExportedChat[];
  /** Follow-ups of live memories (they go with their memory). */
  followUps: ExportedFollowUp[];
}

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

function pushTo<T>(map: Map<string, T[]>, key: string, value: T): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** The export of one user, or null when no such user exists. */
export async function exportUserMemories(
  prisma: PrismaClient,
  userId: string,
  now: Date = new Date(),
): Promise<UserMemoryExport | null> {
  const user = await prisma.user.findUnique({ where: { id: userId } });
  if (!user) return null;
  const order = [{ createdAt: 'asc' as const }, { id: 'asc' as const }];
  const [instances, memories, history, sessions, messages, followUps] = await Promise.all([
    prisma.personaInstance.findMany({
      where: { userId },
      include: { persona: { select: { id: true, slug: true, name: true } } },
      orderBy: order,
    }),
    // The vector column is `Unsupported` in the Prisma schema, so Prisma never selects it.
    prisma.memory.findMany({ where: { userId }, orderBy: order }),
    prisma.memoryHistory.findMany({ where: { userId }, orderBy: order }),
    prisma.chatSession.findMany({ where: { userId }, orderBy: order }),
    prisma.message.findMany({
      where: { userId },
      orderBy: order,
      select: {
        id: true,
        sessionId: true,
        role: true,
        content: true,
        createdAt: true,
        clientMessageId: true,
        replyToId: true,
        model: true,
      },
    }),
    prisma.followUp.findMany({ where: { userId }, orderBy: order }),
  ]);
  const messagesOf = new Map<string, ExportedMessage[]>();
  for (const { sessionId, createdAt, ...m } of messages) {
    pushTo(messagesOf, sessionId, { ...m, createdAt: createdAt.toISOString() });
  }

  const historyOf = new Map<string, ExportedHistory[]>();
  const deleted = new Map<string, UserMemoryExport['deletedMemories'][number]>();
  const live = new Set(memories.map((m) => m.id));
  for (const h of history) {
    const row: ExportedHistory = {
      id: h.id,
      action: h.action,
      oldContent: h.oldContent,
      newContent: h.newContent,
      actorType: h.actorType,
      actorId: h.actorId,
      jobId: h.jobId,
      createdAt: h.createdAt.toISOString(),
    };
    if (live.has(h.memoryId)) {
      pushTo(historyOf, h.memoryId, row);
      continue;
    }
    const entry = deleted.get(h.memoryId) ?? {
      memoryId: h.memoryId,
      layer: h.instanceId === null ? ('PROFILE' as const) : ('RELATIONSHIP' as const),
      instanceId: h.instanceId,
      history: [],
    };
    entry.history.push(row);
    deleted.set(h.memoryId, entry);
  }

  const byInstance = new Map<string, ExportedMemory[]>();
  const profile: ExportedMemory[] = [];
  for (const m of memories) {
    const out: ExportedMemory = {
      id: m.id,
      content: m.content,
      category: m.category,
      confidence: m.confidence,
      embeddingModel: m.embeddingModel,
      sourceSessionId: m.sourceSessionId,
      sourceMessageId: m.sourceMessageId,
      createdAt: m.createdAt.toISOString(),
      updatedAt: m.updatedAt.toISOString(),
      supersededAt: iso(m.supersededAt),
      supersededBy: m.supersededById,
      expiresAt: iso(m.expiresAt),
      occurredAt: iso(m.occurredAt),
      history: historyOf.get(m.id) ?? [],
    };
    if (m.instanceId === null) profile.push(out);
    else pushTo(byInstance, m.instanceId, out);
  }

  return {
    format: EXPORT_FORMAT,
    version: EXPORT_VERSION,
    exportedAt: now.toISOString(),
    user: { id: user.id, createdAt: user.createdAt.toISOString(), timeZone: user.timeZone },
    profile,
    relationships: instances.map((i) => ({
      instanceId: i.id,
      persona: i.persona,
      createdAt: i.createdAt.toISOString(),
      memories: byInstance.get(i.id) ?? [],
    })),
    deletedMemories: [...deleted.values()],
    chats: sessions.map((c) => ({
      sessionId: c.id,
      instanceId: c.instanceId,
      createdAt: c.createdAt.toISOString(),
      messages: messagesOf.get(c.id) ?? [],
    })),
    followUps: followUps.map((f) => ({
      id: f.id,
      memoryId: f.memoryId,
      instanceId: f.instanceId,
      // Stored state: an export is a record, not a view as of a clock.
      state: f.state,
      closeReason: f.closeReason,
      dueAt: f.dueAt.toISOString(),
      expiresAt: f.expiresAt.toISOString(),
      askedAt: iso(f.askedAt),
      closedAt: iso(f.closedAt),
      createdAt: f.createdAt.toISOString(),
    })),
  };
}
