import type { ChatSession, PersonaInstance } from '@prisma/client';
import { ensureUser } from '../auth/users.js';
import { notFound } from '../errors.js';
import type { Services } from '../services.js';

/**
 * Opens a new chat session with a persona. The persona instance (the anchor of this user's
 * relationship memories with it) is created on first use and reused afterwards.
 */
export async function startChat(
  s: Pick<Services, 'prisma' | 'limits'>,
  userId: string,
  personaId: string,
): Promise<{ session: ChatSession; instance: PersonaInstance }> {
  await s.limits.admitStart(userId);
  const persona = await s.prisma.persona.findUnique({ where: { id: personaId } });
  if (!persona || persona.archivedAt) throw notFound('Persona');
  return s.prisma.$transaction(async (tx) => {
    // Every row of a user hangs off an instance made here, so this is where a token whose
    // users row is gone (erased, possibly by another machine) gets a fresh account back; the
    // provisioning cache in src/auth/users.ts cannot know about a deletion elsewhere.
    await ensureUser(tx, userId);
    const instance = await tx.personaInstance.upsert({
      where: { userId_personaId: { userId, personaId } },
      create: { userId, personaId },
      update: {},
    });
    const session = await tx.chatSession.create({ data: { userId, instanceId: instance.id } });
    return { session, instance };
  });
}
