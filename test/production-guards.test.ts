import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCK_FILE } from '../src/db/lock.js';
import { checkServerEnv, parseEnv } from '../src/env.js';
import { runCliProcess } from './cli/helpers.js';
import { TEST_JWT_SECRET } from './helpers/app.js';

/**
 * Issue 13, production guards 1 and 2 and defect 10, with real processes: production refuses to
 * start on the embedded database or with a public /metrics; the embedded data directory is
 * locked by the server, so a CLI run against it refuses (and a crashed owner's lock is taken
 * over); METRICS_PORT serves /metrics on a port of its own.
 */
const BASE = { PATH: process.env.PATH ?? '', JWT_SECRET: TEST_JWT_SECRET, LOG_LEVEL: 'warn' };
let dataDir: string;
let server: ChildProcess | null = null;
let output = '';

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as { port: number };
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

function runServer(env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/index.ts'], {
    env: { ...BASE, HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d) => (output += d));
  child.stderr?.on('data', (d) => (output += d));
  return child;
}

const exitOf = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.on('exit', (code) => resolve(code));
  });

/** Bounded polling for the server's readiness (no sleeps as synchronisation). */
async function waitReady(url: string, child: ChildProcess): Promise<void> {
  const end = Date.now() + 120_000;
  while (Date.now() < end) {
    if (child.exitCode !== null) throw new Error(`server exited:\n${output}`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`server did not become ready:\n${output}`);
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'companion-lock-'));
});
afterAll(async () => {
  server?.kill('SIGKILL');
  await rm(dataDir, { recursive: true, force: true });
});

describe('guard 1 and defect 10: production configuration', () => {
  const prod = { NODE_ENV: 'production', JWT_SECRET: TEST_JWT_SECRET };
  it('refuses NODE_ENV=production without DATABASE_URL', () => {
    expect(() => parseEnv(prod)).toThrow(/DATABASE_URL: required when NODE_ENV=production/);
    expect(() => parseEnv({ ...prod, DATABASE_URL: 'postgres://x/y' })).not.toThrow();
  });

  it('refuses a production server whose /metrics would be public', () => {
    const env = parseEnv({ ...prod, DATABASE_URL: 'postgres://x/y' });
    expect(() => checkServerEnv(env)).toThrow(/METRICS_TOKEN or METRICS_PORT/);
    expect(() => checkServerEnv({ ...env, METRICS_TOKEN: 'x'.repeat(16) })).not.toThrow();
    expect(() => checkServerEnv({ ...env, METRICS_PORT: 9091 })).not.toThrow();
    expect(() => checkServerEnv({ ...env, METRICS_PORT: env.PORT })).toThrow(/METRICS_PORT/);
    // Development keeps today's convenience.
    expect(() => checkServerEnv(parseEnv({}))).not.toThrow();
  });

  it('the server process exits with the message, before opening any database', async () => {
    const child = runServer({ NODE_ENV: 'production', DATA_DIR: join(dataDir, 'never') });
    expect(await exitOf(child)).toBe(1);
    expect(output).toMatch(/DATABASE_URL: required when NODE_ENV=production/);
    await expect(readFile(join(dataDir, 'never', LOCK_FILE))).rejects.toThrow(/ENOENT/);
    output = '';
  }, 120_000);
});

describe('guard 2: the embedded data directory has one owner process', () => {
  it('refuses a CLI while the server holds it, takes over the lock once the server is dead; METRICS_PORT serves /metrics', async () => {
    const [port, metricsPort] = [await freePort(), await freePort()];
    const metricsToken = 'metrics-token-0123456789';
    server = runServer({
      NODE_ENV: 'test',
      PORT: String(port),
      DATA_DIR: dataDir,
      METRICS_PORT: String(metricsPort),
      METRICS_TOKEN: metricsToken,
      WORKER_ENABLED: 'false',
    });
    await waitReady(`http://127.0.0.1:${port}/ready`, server);
    expect((await readFile(join(dataDir, LOCK_FILE), 'utf8')).trim()).toBe(String(server.pid));

    // Defect 10: /metrics is not on the public port, only on METRICS_PORT (with its token).
    expect((await fetch(`http://127.0.0.1:${port}/metrics`)).status).toBe(404);
    const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
    expect((await fetch(metricsUrl)).status).toBe(401);
    const metrics = await fetch(metricsUrl, {
      headers: { authorization: `Bearer ${metricsToken}` },
    });
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toMatch(/companion_/);

    const file = join(dataDir, 'personas.json');
    await writeFile(
      file,
      JSON.stringify([
        { slug: 'lock-test', name: 'Lock', description: 'd', greeting: 'g', systemPrompt: 's' },
      ]),
    );
    const cliEnv = { ...BASE, DATA_DIR: dataDir };
    const refused = await runCliProcess('src/cli/personas.ts', ['import', file], cliEnv);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`in use by process ${server.pid}`);
    expect(refused.stderr).toMatch(/stop that process/);
    expect(refused.stderr).not.toMatch(/^\s+at /m); // one clear line, no stack
    // The server still owns it and still serves.
    expect((await readFile(join(dataDir, LOCK_FILE), 'utf8')).trim()).toBe(String(server.pid));
    expect((await fetch(`http://127.0.0.1:${port}/ready`)).status).toBe(200);

    // A crash leaves the lock behind; its pid is dead, so the next process takes it over.
    const dead = server;
    dead.kill('SIGKILL');
    await exitOf(dead);
    server = null;
    expect((await readFile(join(dataDir, LOCK_FILE), 'utf8')).trim()).toBe(String(dead.pid));
    const imported = await runCliProcess('src/cli/personas.ts', ['import', file], cliEnv);
    expect(imported.code, imported.stderr).toBe(0);
    // ...and releases it when done.
    await expect(readFile(join(dataDir, LOCK_FILE))).rejects.toThrow(/ENOENT/);
    // Three processes start here (a server, two CLIs): generous on a busy machine.
  }, 300_000);
});
