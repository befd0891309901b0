import type { ChatSession, PersonaInstance } from '@prisma/client';
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
  const instance = await s.prisma.personaInstance.upsert({
    where: { userId_personaId: { userId, personaId } },
    create: { userId, personaId },
    update: {},
  });
  const session = await s.prisma.chatSession.create({
    data: { userId, instanceId: instance.id },
  });
  return { session, instance };
}
