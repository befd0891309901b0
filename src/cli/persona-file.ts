import { readFile } from 'node:fs/promises';
import type { PrismaClient } from '@prisma/client';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { PersonaSeed } from '../personas/defaults.js';
import { upsertPersonas } from '../personas/seed.js';
import { CliError } from './common.js';

/**
 * A personas file: a JSON array of {slug, name, description, greeting, systemPrompt, traits?}.
 * JSON only: no YAML parser is installed, and adding one for a seed file is not worth a
 * dependency (`yq -o=json` converts YAML if needed).
 */
const text = (max: number) =>
  z
    .string({ error: (iss) => (iss.input === undefined ? 'is required' : 'must be a string') })
    .trim()
    .min(1, 'must not be empty')
    .max(max, `must be at most ${max} characters`);

export const personaSeedSchema = z.strictObject(
  {
    slug: text(64).regex(
      /^[a-z0-9]+(?:-[a-z0-9]+)*$/,
      'must be lowercase letters, digits and single dashes (e.g. "night-owl")',
    ),
    name: text(100),
    description: text(2000),
    greeting: text(2000),
    systemPrompt: text(20000),
    traits: z
      .record(z.string(), z.unknown(), { error: 'must be a JSON object' })
      .refine((t) => JSON.stringify(t).length <= 10_000, 'must be at most 10 kB of JSON')
      .optional(),
  },
  {
    error: (iss) =>
      iss.code === 'invalid_type'
        ? 'must be an object {slug, name, description, greeting, systemPrompt, traits?}'
        : undefined,
  },
);

/** Validates a parsed file; every problem of every item is reported at once. */
export function validatePersonas(data: unknown, source = 'input'): PersonaSeed[] {
  if (!Array.isArray(data)) {
    throw new CliError(`${source}: expected a JSON array of personas`);
  }
  if (data.length === 0) throw new CliError(`${source}: the array is empty`);
  const problems: string[] = [];
  const seeds: PersonaSeed[] = [];
  const seen = new Map<string, number>();
  data.forEach((item, index) => {
    const slug = (item as { slug?: unknown } | null)?.slug;
    const where = `item ${index}${typeof slug === 'string' ? ` ("${slug}")` : ''}`;
    const parsed = personaSeedSchema.safeParse(item);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        const path = issue.path.join('.');
        problems.push(`  ${where}: ${path ? `${path}: ` : ''}${issue.message}`);
      }
      return;
    }
    const first = seen.get(parsed.data.slug);
    if (first !== undefined) {
      problems.push(`  ${where}: slug "${parsed.data.slug}" is already used by item ${first}`);
      return;
    }
    seen.set(parsed.data.slug, index);
    seeds.push({ ...parsed.data, traits: parsed.data.traits ?? {} });
  });
  if (problems.length > 0) {
    throw new CliError(`${source} has ${problems.length} problem(s):\n${problems.join('\n')}`);
  }
  return seeds;
}

export async function readPersonasFile(file: string): Promise<PersonaSeed[]> {
  let raw: string;
  try {
    raw = await readFile(file, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`);
  }
  // YAML is a superset of JSON, but JSON files get JSON's stricter parser and error messages.
  const yaml = /\.ya?ml$/i.test(file);
  let data: unknown;
  try {
    data = yaml ? parseYaml(raw) : JSON.parse(raw);
  } catch (err) {
    throw new CliError(`${file} is not valid ${yaml ? 'YAML' : 'JSON'}: ${(err as Error).message}`);
  }
  return validatePersonas(data, file);
}

export interface ImportResult {
  created: string[];
  updated: string[];
  unchanged: string[];
}

/**
 * Upserts by slug (ids, instances and their memories survive an update). The file describes
 * each persona completely: omitted `traits` become `{}`. Unchanged personas are not written,
 * so their `updatedAt` keeps meaning something.
 */
export async function importPersonas(
  prisma: PrismaClient,
  seeds: readonly PersonaSeed[],
  options: { dryRun?: boolean } = {},
): Promise<ImportResult> {
  const existing = new Map(
    (await prisma.persona.findMany({ where: { slug: { in: seeds.map((s) => s.slug) } } })).map(
      (p) => [p.slug, p],
    ),
  );
  const result: ImportResult = { created: [], updated: [], unchanged: [] };
  const toWrite: PersonaSeed[] = [];
  for (const seed of seeds) {
    const current = existing.get(seed.slug);
    if (!current) result.created.push(seed.slug);
    else if (sameContent(current, seed)) {
      result.unchanged.push(seed.slug);
      continue;
    } else result.updated.push(seed.slug);
    toWrite.push(seed);
  }
  if (!options.dryRun && toWrite.length > 0) await upsertPersonas(prisma, toWrite);
  return result;
}

type StoredPersona = Omit<PersonaSeed, 'traits'> & { traits: unknown };

function sameContent(current: StoredPersona, seed: PersonaSeed): boolean {
  return (
    current.name === seed.name &&
    current.description === seed.description &&
    current.greeting === seed.greeting &&
    current.systemPrompt === seed.systemPrompt &&
    canonicalJson(current.traits) === canonicalJson(seed.traits)
  );
}

/** jsonb does not keep key order, so compare with sorted keys. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

export interface PersonaListing {
  id: string;
  slug: string;
  name: string;
  archived: boolean;
  instances: number;
  updatedAt: string;
}

export async function listPersonas(prisma: PrismaClient): Promise<PersonaListing[]> {
  const rows = await prisma.persona.findMany({
    orderBy: { slug: 'asc' },
    include: { _count: { select: { instances: true } } },
  });
  return rows.map((p) => ({
    id: p.id,
    slug: p.slug,
    name: p.name,
    archived: p.archivedAt !== null,
    instances: p._count.instances,
    updatedAt: p.updatedAt.toISOString(),
  }));
}
