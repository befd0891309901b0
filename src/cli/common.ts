import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { pino } from 'pino';
import { openConfiguredDatabase } from '../composition.js';
import type { Database } from '../db/client.js';
import { type Env, parseEnv } from '../env.js';
import type { Logger } from '../logger.js';

/**
 * Shared plumbing of the operator CLIs (src/cli/*). Each command is a function of
 * (argv, io) → exit code, so tests run it in-process; the file's entry-point guard is the
 * only part that touches the real process.
 */

/** Where a command writes: stdout carries the result (JSON, a token), stderr everything else. */
export interface CliIo {
  stdout: { write(chunk: string): unknown };
  stderr: { write(chunk: string): unknown; isTTY?: boolean; columns?: number };
}

/** Optional overrides, so tests can hand a command their own database or embedder. */
export interface CliDeps {
  env?: Env;
  db?: Database;
}

export type Command = (argv: string[], io: CliIo) => Promise<number>;

/** An expected failure (bad input, bad config): printed as one line, exit code 1. */
export class CliError extends Error {
  override readonly name = 'CliError';
  readonly exitCode: number;
  /** A malformed command line: the message is followed by a pointer to --help. */
  readonly usage: boolean;
  constructor(message: string, options: { exitCode?: number; usage?: boolean } = {}) {
    super(message);
    this.exitCode = options.exitCode ?? 1;
    this.usage = options.usage ?? false;
  }
}

export function usageError(message: string): CliError {
  return new CliError(message, { usage: true });
}

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function requireUuid(value: string | undefined, flag: string): string {
  if (!value) throw usageError(`${flag} <uuid> is required`);
  if (!UUID.test(value)) throw usageError(`${flag} must be a UUID, got "${value}"`);
  return value.toLowerCase();
}

/** node:util parseArgs, with its errors turned into usage errors. */
export function parseCliArgs<T extends NonNullable<ParseArgsConfig['options']>>(
  argv: string[],
  options: T,
  allowPositionals = false,
) {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (err) {
    throw usageError((err as Error).message.replace(/\. To specify a positional.*$/s, '.'));
  }
}

/**
 * The server's settings (one zod schema, src/env.ts), with one CLI-specific default: logs at
 * `warn`, so a terminal sees results rather than JSON log lines. LOG_LEVEL still wins.
 */
export function cliEnv(source: Record<string, string | undefined> = process.env): Env {
  try {
    return parseEnv({ LOG_LEVEL: 'warn', ...source });
  } catch (err) {
    throw new CliError((err as Error).message);
  }
}

/** pino on stderr (fd 2): stdout belongs to the command's output. */
export function cliLogger(env: Env): Logger {
  return pino(
    { level: env.LOG_LEVEL, base: { service: 'companion-cli' } },
    pino.destination({ dest: 2, sync: true }),
  );
}

/**
 * DATABASE_URL, or the embedded database in DATA_DIR (migrated on open, like the server).
 * Two processes on one directory would corrupt it: src/db/lock.ts refuses the second one, and
 * the line below says why before that can happen.
 */
export async function openCliDatabase(env: Env, io: CliIo, logger: Logger): Promise<Database> {
  if (!env.DATABASE_URL) {
    io.stderr.write(
      `Using the embedded database in ${resolve(env.DATA_DIR)} ` +
        '(stop the server first: it is single-process; set DATABASE_URL for Postgres).\n',
    );
  }
  return openConfiguredDatabase(env, logger);
}

/** The command's database: the one a test passed in, or a configured one this call closes. */
export async function withDatabase<T>(
  deps: CliDeps,
  env: Env,
  io: CliIo,
  fn: (db: Database, logger: Logger) => Promise<T>,
): Promise<T> {
  const logger = cliLogger(env);
  if (deps.db) return fn(deps.db, logger);
  const db = await openCliDatabase(env, io, logger);
  try {
    return await fn(db, logger);
  } finally {
    await db.close();
  }
}

/** Runs a command body, mapping expected errors to `error: …` and exit code 1. */
export async function guarded(io: CliIo, usageHint: string, body: () => Promise<number>) {
  try {
    return await body();
  } catch (err) {
    if (err instanceof CliError) {
      io.stderr.write(`error: ${err.message}\n`);
      if (err.usage) io.stderr.write(`${usageHint}\n`);
      return err.exitCode;
    }
    const e = err as Error & { code?: unknown };
    // System and driver errors (ECONNREFUSED, Postgres codes) read fine as one line; anything
    // else is a bug, and its stack is what a report needs.
    io.stderr.write(
      `error: ${e.message ?? String(err)}\n${typeof e.code === 'string' ? '' : `${e.stack ?? ''}\n`}`,
    );
    return 1;
  }
}

/** True when this module is the script node was started with (not when a test imports it). */
export function isEntryPoint(moduleUrl: string): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return pathToFileURL(realpathSync(script)).href === moduleUrl;
  } catch {
    return false;
  }
}

/** Runs a command as the process: real argv and streams, exit code once output is flushed. */
export function runCli(command: Command): void {
  const io: CliIo = { stdout: process.stdout, stderr: process.stderr };
  command(process.argv.slice(2), io).then(
    (code) => exitAfterFlush(code),
    (err: unknown) => {
      process.stderr.write(`error: ${err instanceof Error ? err.stack : String(err)}\n`);
      exitAfterFlush(1);
    },
  );
}

/**
 * Exits explicitly: a loaded embedding model or a driver pool can keep the event loop alive
 * after the work is done. Waits for both streams so piped output is never cut short.
 */
function exitAfterFlush(code: number): void {
  let pending = 2;
  const done = () => {
    pending -= 1;
    if (pending === 0) process.exit(code);
  };
  process.stdout.write('', done);
  process.stderr.write('', done);
}
