import { type Persona, Prisma, type PrismaClient } from '@prisma/client';
import type { z } from 'zod';
import { personaSeedSchema } from '../cli/persona-file.js';
import { badInput, conflict, notFound } from '../errors.js';
import type { Logger } from '../logger.js';

/**
 * Persona management by admins. Inputs are validated by the same schema as the import CLI's
 * files, so a persona is valid whichever way it arrives. Personas carry no memories: these
 * writes touch no memory rows and so have no memory history; each is logged with the admin's id.
 */
export interface ManageDeps {
  prisma: PrismaClient;
  logger: Logger;
}

/** `traits` arrives as any JSON value; the schema accepts only an object. */
export interface PersonaFields {
  name: string;
  description: string;
  greeting: string;
  systemPrompt: string;
  traits?: unknown;
}
export interface NewPersona extends PersonaFields {
  slug: string;
}
/** Omitted or null fields stay as they are; `slug` is the import CLI's key and never changes. */
export type PersonaPatch = { [K in keyof PersonaFields]?: PersonaFields[K] | null };

const patchSchema = personaSeedSchema.omit({ slug: true }).partial();

function parse<T>(schema: z.ZodType<T>, input: unknown): T {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => `${i.path.join('.') || 'input'} ${i.message}`);
  const field = result.error.issues[0]?.path[0];
  throw badInput(`Invalid persona: ${problems.join('; ')}.`, {
    ...(typeof field === 'string' ? { field } : {}),
    problems,
  });
}

const withoutNulls = <T extends object>(input: T) =>
  Object.fromEntries(Object.entries(input).filter(([, v]) => v !== null && v !== undefined));

const isPrismaError = (err: unknown, code: string) =>
  err instanceof Prisma.PrismaClientKnownRequestError && err.code === code;

export async function createPersona(
  deps: ManageDeps,
  actorId: string,
  input: NewPersona,
): Promise<Persona> {
  const seed = parse(personaSeedSchema, withoutNulls(input));
  // ON CONFLICT DO NOTHING rather than catching the unique violation: the PGlite adapter does
  // not map it to Prisma's P2002, and a count works the same on every driver.
  const { count } = await deps.prisma.persona.createMany({
    data: { ...seed, traits: (seed.traits ?? {}) as Prisma.InputJsonObject },
    skipDuplicates: true,
  });
  if (count === 0) throw conflict(`A persona with slug "${seed.slug}" exists.`);
  const persona = await deps.prisma.persona.findUniqueOrThrow({ where: { slug: seed.slug } });
  deps.logger.info({ actorId, personaId: persona.id, slug: seed.slug }, 'persona created');
  return persona;
}

export async function updatePersona(
  deps: ManageDeps,
  actorId: string,
  personaId: string,
  patch: PersonaPatch,
): Promise<Persona> {
  const data = parse(patchSchema, withoutNulls(patch));
  const { traits, ...rest } = data;
  try {
    const persona = await deps.prisma.persona.update({
      where: { id: personaId },
      data: { ...rest, ...(traits ? { traits: traits as Prisma.InputJsonObject } : {}) },
    });
    deps.logger.info({ actorId, personaId, fields: Object.keys(data) }, 'persona updated');
    return persona;
  } catch (err) {
    if (isPrismaError(err, 'P2025')) throw notFound('Persona');
    throw err;
  }
}

/**
 * Archived personas leave the public list and cannot start new chats; existing instances,
 * sessions and memories stay, and their chats go on. Idempotent: archiving twice keeps the
 * first `archivedAt`.
 */
export async function setPersonaArchived(
  deps: ManageDeps,
  actorId: string,
  personaId: string,
  archived: boolean,
): Promise<Persona> {
  const { count } = await deps.prisma.persona.updateMany({
    where: { id: personaId, archivedAt: archived ? null : { not: null } },
    data: { archivedAt: archived ? new Date() : null },
  });
  const persona = await deps.prisma.persona.findUnique({ where: { id: personaId } });
  if (!persona) throw notFound('Persona');
  if (count > 0) {
    deps.logger.info({ actorId, personaId }, archived ? 'persona archived' : 'persona unarchived');
  }
  return persona;
}
