import {
  type CliDeps,
  type CliIo,
  cliEnv,
  guarded,
  isEntryPoint,
  parseCliArgs,
  runCli,
  usageError,
  withDatabase,
} from './common.js';
import { importPersonas, listPersonas, readPersonasFile } from './persona-file.js';

const USAGE = `Usage:
  npm run personas -- import <file.json|file.yaml> [--dry-run]
  npm run personas -- list [--json]

  import   Create or update personas from a JSON or YAML (.yaml/.yml) array of
           {slug, name, description, greeting, systemPrompt, traits?}, matched by slug.
           Existing personas keep their id, instances and memories. The whole file is
           validated before anything is written. Omitted traits become {}.
  list     The personas in the database (slug, name, users, archived).

Options:
  --dry-run  validate and report what would change, write nothing
  --json     list as JSON
  -h, --help this help

Database: DATABASE_URL, or the embedded database in DATA_DIR (stop the server first).`;

const HINT = 'Run `npm run personas -- --help` for usage.';

export async function personasCommand(
  argv: string[],
  io: CliIo,
  deps: CliDeps = {},
): Promise<number> {
  return guarded(io, HINT, async () => {
    const { values, positionals } = parseCliArgs(
      argv,
      {
        'dry-run': { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      true,
    );
    if (values.help) {
      io.stdout.write(`${USAGE}\n`);
      return 0;
    }
    const [sub, ...rest] = positionals;
    if (sub === 'import') {
      const [file, ...extra] = rest;
      if (!file) throw usageError('import needs a file: npm run personas -- import <file.json>');
      if (extra.length > 0) throw usageError(`unexpected argument "${extra[0]}"`);
      // Validate before opening the database: a bad file fails fast and touches nothing.
      const seeds = await readPersonasFile(file);
      const env = deps.env ?? cliEnv();
      const dryRun = values['dry-run'] ?? false;
      const result = await withDatabase(deps, env, io, (db) =>
        importPersonas(db.prisma, seeds, { dryRun }),
      );
      const verb = dryRun ? 'would be ' : '';
      const names = (slugs: string[]) => (slugs.length > 0 ? ` (${slugs.join(', ')})` : '');
      io.stdout.write(
        `${dryRun ? 'Dry run: ' : ''}${result.created.length} ${verb}created${names(result.created)}, ` +
          `${result.updated.length} ${verb}updated${names(result.updated)}, ` +
          `${result.unchanged.length} unchanged.\n`,
      );
      return 0;
    }
    if (sub === 'list') {
      if (rest.length > 0) throw usageError(`unexpected argument "${rest[0]}"`);
      const env = deps.env ?? cliEnv();
      const personas = await withDatabase(deps, env, io, (db) => listPersonas(db.prisma));
      if (values.json) {
        io.stdout.write(`${JSON.stringify(personas, null, 2)}\n`);
        return 0;
      }
      if (personas.length === 0) {
        io.stdout.write('No personas. Import some: npm run personas -- import <file.json>\n');
        return 0;
      }
      const rows = [
        ['SLUG', 'NAME', 'USERS', 'STATUS', 'ID'],
        ...personas.map((p) => [
          p.slug,
          p.name,
          String(p.instances),
          p.archived ? 'archived' : 'active',
          p.id,
        ]),
      ];
      const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => r[i]?.length ?? 0))) ?? [];
      for (const r of rows) {
        io.stdout.write(
          `${r
            .map((c, i) => c.padEnd(widths[i] ?? 0))
            .join('  ')
            .trimEnd()}\n`,
        );
      }
      return 0;
    }
    if (sub === undefined) throw usageError('missing command: import or list');
    throw usageError(`unknown command "${sub}" (expected import or list)`);
  });
}

if (isEntryPoint(import.meta.url)) runCli(personasCommand);
