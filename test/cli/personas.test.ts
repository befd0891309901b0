import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliEnv } from '../../src/cli/common.js';
import {
  importPersonas,
  listPersonas,
  readPersonasFile,
  validatePersonas,
} from '../../src/cli/persona-file.js';
import { personasCommand } from '../../src/cli/personas.js';
import { openTestDatabase, type TestDatabase } from '../helpers/database.js';
import { PROCESS_TEST_TIMEOUT_MS } from '../helpers/timeouts.js';
import { captureIo, openChildDatabase, runCliProcess } from './helpers.js';

let database: TestDatabase;
let dir: string;
const env = cliEnv({ NODE_ENV: 'test' });

const owl = {
  slug: 'night-owl',
  name: 'Nyx',
  description: 'A night owl who keeps you company after midnight.',
  greeting: 'Still up? Me too.',
  systemPrompt: 'You are Nyx, a calm night-time companion.',
  traits: { tone: 'calm' },
};

async function file(name: string, content: unknown): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

beforeAll(async () => {
  database = await openTestDatabase();
  dir = await mkdtemp(join(tmpdir(), 'companion-personas-'));
});

afterAll(async () => {
  await database?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('personas import', () => {
  it('creates, then updates in place by slug, and leaves identical personas alone', async () => {
    const prisma = database.db.prisma;
    const first = await importPersonas(prisma, validatePersonas([owl]));
    expect(first).toEqual({ created: ['night-owl'], updated: [], unchanged: [] });
    const created = await prisma.persona.findUniqueOrThrow({ where: { slug: 'night-owl' } });

    // Same content with traits in another key order: unchanged, not rewritten.
    const again = await importPersonas(
      prisma,
      validatePersonas([{ ...owl, traits: { tone: 'calm' } }]),
    );
    expect(again).toEqual({ created: [], updated: [], unchanged: ['night-owl'] });

    const { traits: _omitted, ...withoutTraits } = owl;
    const second = await importPersonas(
      prisma,
      validatePersonas([
        { ...withoutTraits, greeting: '  Hello again, night owl.  ' },
        { ...owl, slug: 'lark', name: 'Lark' },
      ]),
    );
    expect(second).toEqual({ created: ['lark'], updated: ['night-owl'], unchanged: [] });
    const updated = await prisma.persona.findUniqueOrThrow({ where: { slug: 'night-owl' } });
    expect(updated.id).toBe(created.id);
    expect(updated.greeting).toBe('Hello again, night owl.');
    expect(updated.traits).toEqual({});
  });

  it('reads YAML files too, and reports YAML syntax errors clearly', async () => {
    const yaml = await file(
      'personas.yaml',
      [
        '- slug: heron',
        '  name: Heron',
        '  description: A patient listener.',
        '  greeting: Take your time.',
        '  systemPrompt: You are Heron, a patient companion.',
        '  traits: { tone: calm }',
      ].join('\n'),
    );
    const seeds = await readPersonasFile(yaml);
    expect(seeds).toEqual([expect.objectContaining({ slug: 'heron', traits: { tone: 'calm' } })]);
    const broken = await file('broken.yml', '- slug: [unclosed');
    await expect(readPersonasFile(broken)).rejects.toThrow(/not valid YAML/);
  });

  it('reports every problem of every item at once', () => {
    expect(() =>
      validatePersonas(
        [
          { ...owl, slug: 'Night Owl', name: '', system_prompt: 'typo' },
          { slug: 'x', name: 'X' },
          owl,
          { ...owl, traits: ['not', 'an', 'object'] },
          owl,
          42,
        ],
        'people.json',
      ),
    ).toThrowErrorMatchingInlineSnapshot(`
      [CliError: people.json has 9 problem(s):
        item 0 ("Night Owl"): slug: must be lowercase letters, digits and single dashes (e.g. "night-owl")
        item 0 ("Night Owl"): name: must not be empty
        item 0 ("Night Owl"): Unrecognized key: "system_prompt"
        item 1 ("x"): description: is required
        item 1 ("x"): greeting: is required
        item 1 ("x"): systemPrompt: is required
        item 3 ("night-owl"): traits: must be a JSON object
        item 4 ("night-owl"): slug "night-owl" is already used by item 2
        item 5: must be an object {slug, name, description, greeting, systemPrompt, traits?}]
    `);
    expect(() => validatePersonas({ personas: [] }, 'p.json')).toThrow(
      'p.json: expected a JSON array of personas',
    );
  });

  it('fails with exit code 1 on a bad file, a missing file, or bad arguments', async () => {
    const deps = { env, db: database.db };
    const bad = await file('bad.json', [{ ...owl, slug: 'bad slug' }]);
    const cases: [string[], RegExp][] = [
      [['import', bad], /bad\.json has 1 problem\(s\):\n {2}item 0 \("bad slug"\): slug: must be/],
      [['import', join(dir, 'missing.json')], /cannot read .*missing\.json/],
      [['import', await file('broken.json', '[{"slug": ')], /broken\.json is not valid JSON/],
      [['import'], /import needs a file/],
      [['frobnicate'], /unknown command "frobnicate"/],
      [[], /missing command/],
      [['list', '--colour'], /Unknown option '--colour'/],
    ];
    for (const [argv, message] of cases) {
      const io = captureIo();
      expect(await personasCommand(argv, io, deps), argv.join(' ')).toBe(1);
      expect(io.err()).toMatch(message);
      expect(io.out()).toBe('');
    }
    expect(await database.db.prisma.persona.count({ where: { slug: 'bad slug' } })).toBe(0);
  });

  it('dry-run reports without writing; list shows the personas', async () => {
    const io = captureIo();
    const path = await file('dry.json', [{ ...owl, slug: 'dry-run' }]);
    expect(await personasCommand(['import', path, '--dry-run'], io, { env, db: database.db })).toBe(
      0,
    );
    expect(io.out()).toBe(
      'Dry run: 1 would be created (dry-run), 0 would be updated, 0 unchanged.\n',
    );
    expect(await database.db.prisma.persona.count({ where: { slug: 'dry-run' } })).toBe(0);

    const list = captureIo();
    expect(await personasCommand(['list', '--json'], list, { env, db: database.db })).toBe(0);
    const listed = JSON.parse(list.out()) as Awaited<ReturnType<typeof listPersonas>>;
    expect(listed.map((p) => p.slug)).toEqual(['lark', 'night-owl']);
  });
});

describe('npm run personas (child process)', () => {
  it('imports a file into the configured database and lists it', {
    timeout: PROCESS_TEST_TIMEOUT_MS,
  }, async () => {
    const child = await openChildDatabase();
    try {
      await child.use(async (db) => {
        await importPersonas(db.prisma, validatePersonas([owl]));
      });
      const path = await file('seed.json', [
        { ...owl, name: 'Nyx II' },
        { ...owl, slug: 'lark' },
      ]);
      const run = await runCliProcess('src/cli/personas.ts', ['import', path], child.env);
      expect(run.stderr).not.toMatch(/error/);
      expect(run.code).toBe(0);
      expect(run.stdout).toBe('1 created (lark), 1 updated (night-owl), 0 unchanged.\n');
      const names = await child.use(async (db) =>
        (await listPersonas(db.prisma)).map((p) => `${p.slug}:${p.name}`),
      );
      expect(names).toEqual(['lark:Nyx', 'night-owl:Nyx II']);
    } finally {
      await child.close();
    }
  });
});
