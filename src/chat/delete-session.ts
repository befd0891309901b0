import type { PrismaClient } from '@prisma/client';
import { notFound } from '../errors.js';

export interface SessionDeletion {
  sessionId: string;
  /** Messages deleted with the session (user messages and replies). */
  messages: number;
  /** Memories that came from the session: kept, with their source link cleared. */
  unlinkedMemories: number;
}

/**
 * Deletes one chat session and its messages, for its owner or an admin (anyone else, and a
 * missing id, get the same NOT_FOUND). Memories are not conversation: profile memories learnt
 * in the session stay, and relationship memories stay with their persona instance; both lose
 * their link to the deleted messages. To remove memories too, use forgetMemories.
 *
 * Runs under the per-user lock memory writers take, so an extraction job of one of these
 * turns either wrote before (and its memories are unlinked here) or finds its message gone and
 * writes nothing (extract-job.ts).
 */
export async function deleteChatSession(
  prisma: PrismaClient,
  actor: { id: string; isAdmin: boolean },
  sessionId: string,
): Promise<SessionDeletion> {
  const owner = await prisma.chatSession.findUnique({
    where: { id: sessionId },
    select: { userId: true },
  });
  if (!owner || (owner.userId !== actor.id && !actor.isAdmin)) throw notFound('Chat session');
  return prisma.$transaction(async (tx) => {
    await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended(${owner.userId}, 0))`;
    const unlinkedMemories = await tx.$executeRaw`
      UPDATE memories SET source_session_id = NULL, source_message_id = NULL
      WHERE user_id = ${owner.userId}::uuid AND source_session_id = ${sessionId}::uuid`;
    const messages = await tx.$executeRaw`
      DELETE FROM messages WHERE session_id = ${sessionId}::uuid`;
    const sessions = await tx.$executeRaw`
      DELETE FROM chat_sessions WHERE id = ${sessionId}::uuid`;
    if (sessions === 0) throw notFound('Chat session'); // deleted meanwhile
    return { sessionId, messages, unlinkedMemories };
  });
}
