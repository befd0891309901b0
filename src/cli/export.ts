import { writeFile } from 'node:fs/promises';
import { exportUserMemories } from '../memory/export.js';
import {
  type CliDeps,
  CliError,
  type CliIo,
  cliEnv,
  guarded,
  isEntryPoint,
  parseCliArgs,
  requireUuid,
  runCli,
  usageError,
  withDatabase,
} from './common.js';

const USAGE = `Usage: npm run export -- --user <uuid> [--out <file>]

Writes everything the server holds about one user as JSON (format version 2): the profile
layer, the relationship layer per persona instance (with the persona's slug and name), every
memory with its history (superseded ones included), the history of deleted memories, and
every chat session with its messages. No embeddings.

Options:
  --user <uuid>  the user (the \`sub\` of their token)
  --out <file>   write to this file (created with mode 600) instead of stdout
  -h, --help     this help

Database: DATABASE_URL, or the embedded database in DATA_DIR (stop the server first).`;

const HINT = 'Run `npm run export -- --help` for usage.';

export async function exportCommand(
  argv: string[],
  io: CliIo,
  deps: CliDeps = {},
): Promise<number> {
  return guarded(io, HINT, async () => {
    const { values, positionals } = parseCliArgs(argv, {
      user: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    });
    if (values.help) {
      io.stdout.write(`${USAGE}\n`);
      return 0;
    }
    if (positionals.length > 0) throw usageError(`unexpected argument "${positionals[0]}"`);
    const userId = requireUuid(values.user, '--user');
    if (values.out === '') throw usageError('--out needs a file name');
    const env = deps.env ?? cliEnv();
    const data = await withDatabase(deps, env, io, (db) => exportUserMemories(db.prisma, userId));
    if (!data) throw new CliError(`no user ${userId} in this database`);
    const json = `${JSON.stringify(data, null, 2)}\n`;
    const count =
      data.profile.length + data.relationships.reduce((n, r) => n + r.memories.length, 0);
    if (values.out) {
      // Personal data: readable by the operator only.
      await writeFile(values.out, json, { mode: 0o600 });
      const messages = data.chats.reduce((n, c) => n + c.messages.length, 0);
      io.stderr.write(
        `Exported ${count} memories (${data.profile.length} profile, ` +
          `${data.relationships.length} persona instances) and ${messages} messages ` +
          `(${data.chats.length} chat sessions) to ${values.out}.\n`,
      );
    } else {
      io.stdout.write(json);
    }
    return 0;
  });
}

if (isEntryPoint(import.meta.url)) runCli(exportCommand);
