import type { Prisma, PrismaClient } from '@prisma/client';
import { DEFAULT_PERSONAS, type PersonaSeed } from './defaults.js';

/** Creates personas by slug, or updates them in place (ids and relationships survive). */
export async function upsertPersonas(
  prisma: PrismaClient,
  personas: readonly PersonaSeed[],
): Promise<number> {
  for (const p of personas) {
    const data = { ...p, traits: p.traits as Prisma.InputJsonValue };
    await prisma.persona.upsert({ where: { slug: p.slug }, create: data, update: data });
  }
  return personas.length;
}

/** Zero-config start: seed the defaults into an empty database, never over an admin's edits. */
export async function seedDefaultPersonasIfEmpty(prisma: PrismaClient): Promise<number> {
  if ((await prisma.persona.count()) > 0) return 0;
  return upsertPersonas(prisma, DEFAULT_PERSONAS);
}
