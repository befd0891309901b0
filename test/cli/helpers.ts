import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { inject } from 'vitest';
import type { CliIo } from '../../src/cli/common.js';
import { type Database, openDatabase } from '../../src/db/client.js';
import { silentLogger } from '../../src/logger.js';
import { openTestDatabase, type TestDatabase, tier } from '../helpers/database.js';

/** Captures a command's output when it runs in-process. */
export function captureIo(): CliIo & { out(): string; err(): string } {
  let out = '';
  let err = '';
  return {
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s), isTTY: false },
    out: () => out,
    err: () => err,
  };
}

export interface ChildResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a CLI the way `npm run` does (tsx), with a clean environment plus `env`. */
export function runCliProcess(
  script: string,
  args: string[],
  env: Record<string, string>,
  /** Called with all stderr so far on every chunk (e.g. to send a signal at some point). */
  onStderr?: (stderr: string, child: ChildProcess) => void,
): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
      env: { PATH: process.env.PATH, NODE_ENV: 'test', LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => {
      stderr += d;
      onStderr?.(stderr, child);
    });
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * A database a CLI child process can open too. Real-Postgres tier: this test file's database
 * (DATABASE_URL). PGlite tier: a data directory loaded from the migrated template (DATA_DIR);
 * PGlite is single-process, so the test opens it only inside `use` and never while a child runs.
 */
export interface ChildDatabase {
  env: Record<string, string>;
  use<T>(fn: (db: Database) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export async function openChildDatabase(): Promise<ChildDatabase> {
  if (tier === 'postgres') {
    const database: TestDatabase = await openTestDatabase();
    return {
      env: { DATABASE_URL: database.url ?? '' },
      use: (fn) => fn(database.db),
      close: () => database.close(),
    };
  }
  const dir = await mkdtemp(join(tmpdir(), 'companion-cli-'));
  const dataDir = join(dir, 'data');
  let loaded = false;
  return {
    env: { DATA_DIR: dataDir },
    async use(fn) {
      const loadDataDir = loaded ? undefined : new Blob([await readFile(inject('pgliteTemplate'))]);
      loaded = true;
      const pglite = await PGlite.create(dataDir, { loadDataDir, extensions: { vector } });
      const db = await openDatabase({ pglite, logger: silentLogger, migrate: false });
      try {
        return await fn(db);
      } finally {
        await db.close();
      }
    },
    close: () => rm(dir, { recursive: true, force: true }),
  };
}

/** Replaces UUIDs (numbered by first appearance) and timestamps, for stable snapshots. */
export function normalise<T>(value: T): T {
  const ids = new Map<string, string>();
  const json = JSON.stringify(value)
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, (id) => {
      if (!ids.has(id)) ids.set(id, `<id ${ids.size + 1}>`);
      return ids.get(id) as string;
    })
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/g, '<time>');
  return JSON.parse(json) as T;
}
