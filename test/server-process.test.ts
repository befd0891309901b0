import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../src/auth/tokens.js';
import { openDatabase } from '../src/db/client.js';
import { silentLogger } from '../src/logger.js';
import { type OpenRouterFake, startOpenRouterFake } from './fakes/openrouter-fake.js';
import { startVoyageFake, type VoyageFake } from './fakes/voyage-fake.js';
import { TEST_JWT_SECRET } from './helpers/app.js';
import { openTestDatabase, type TestDatabase, tier } from './helpers/database.js';
import { SEND_MESSAGE } from './helpers/operations.js';
import { fakeProviderEnv } from './helpers/providers.js';

/**
 * The real server process (src/index.ts): boot, serve, and drain on SIGTERM — in-flight turns
 * complete, nothing is left claimed, exit code 0 within the deadline.
 */
let voyage: VoyageFake;
let openrouter: OpenRouterFake;
let database: TestDatabase | null = null;
let dataDir: string;
let child: ChildProcess | null = null;
let output = '';
const SHUTDOWN_TIMEOUT_MS = 8000;
/**
 * A boot through tsx compiles the whole server first: seconds on a quiet machine, a minute or
 * more on a saturated one. These bounds catch a hang; they do not measure speed.
 */
const BOOT_DEADLINE_MS = 180_000;
const TEST_TIMEOUT_MS = BOOT_DEADLINE_MS + 60_000;

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as { port: number };
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

beforeAll(async () => {
  voyage = await startVoyageFake();
  openrouter = await startOpenRouterFake({ responder: () => 'Happy to hear from you!' });
  dataDir = await mkdtemp(join(tmpdir(), 'companion-server-'));
  if (tier === 'postgres') database = await openTestDatabase();
});

afterAll(async () => {
  child?.kill('SIGKILL');
  await Promise.all([voyage?.close(), openrouter?.close(), database?.close()]);
  await rm(dataDir, { recursive: true, force: true });
});

/** Polls until `ready()` holds, for at most `deadlineMs`. */
async function until(ready: () => boolean, deadlineMs: number, what: string): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!ready()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}:\n${output}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function waitFor(url: string, deadlineMs: number): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (Date.now() < end) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`server did not become ready:\n${output}`);
}

describe('the server process', () => {
  it('drains in-flight turns on SIGTERM and exits 0', { timeout: TEST_TIMEOUT_MS }, async () => {
    const port = await freePort();
    child = spawn(process.execPath, ['--import', 'tsx', 'src/index.ts'], {
      env: {
        PATH: process.env.PATH,
        NODE_ENV: 'test',
        HOST: '127.0.0.1',
        PORT: String(port),
        // info: the test waits for the 'shutting down' line before letting the turns finish.
        LOG_LEVEL: 'info',
        JWT_SECRET: TEST_JWT_SECRET,
        ...(database?.url ? { DATABASE_URL: database.url } : { DATA_DIR: dataDir }),
        ...fakeProviderEnv({ voyage, openrouter }),
        SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
        CHAT_MAX_CONCURRENT_TURNS: '10',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (d) => (output += d));
    child.stderr?.on('data', (d) => (output += d));
    const exited = new Promise<{ code: number | null; at: number }>((resolve) =>
      child?.on('exit', (code) => resolve({ code, at: Date.now() })),
    );
    const base = `http://127.0.0.1:${port}`;
    await waitFor(`${base}/ready`, BOOT_DEADLINE_MS);

    const token = await mintToken({ secret: TEST_JWT_SECRET }, { sub: crypto.randomUUID() });
    const gql = async (query: string, variables: Record<string, unknown> = {}) => {
      const res = await fetch(`${base}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query, variables }),
      });
      return {
        status: res.status,
        body: (await res.json()) as { data?: Record<string, never>; errors?: unknown },
      };
    };
    const personas = await gql('{ personas { edges { node { id } } } }');
    const personaId = (
      personas.body.data as unknown as { personas: { edges: { node: { id: string } }[] } }
    ).personas.edges[0]?.node.id;
    const started = await gql(
      'mutation($p: ID!) { startChat(input: {personaId: $p}) { session { id } } }',
      {
        p: personaId,
      },
    );
    const sessionId = (started.body.data as unknown as { startChat: { session: { id: string } } })
      .startChat.session.id;

    // Five turns are held at the model until the server has started draining, so they are in
    // flight when SIGTERM arrives however slow the machine (a fixed delay raced it).
    let release = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    openrouter.setDelay(() => gate);
    const before = openrouter.requests.length;
    const atModel = () => openrouter.requests.length - before;
    const turns = Array.from({ length: 5 }, (_, i) =>
      gql(SEND_MESSAGE, {
        sessionId,
        content: `I like colour number ${i}`,
        clientMessageId: `drain-${i}`,
      }),
    );
    await until(() => atModel() >= 5, 60_000, 'five turns at the model');
    const signalled = Date.now();
    child.kill('SIGTERM');
    await until(() => output.includes('"msg":"shutting down"'), 60_000, 'the drain to start');
    release();

    const results = await Promise.all(turns);
    for (const r of results) {
      expect(r.status).toBe(200);
      expect(r.body.errors).toBeUndefined();
    }
    const { code, at } = await exited;
    child = null;
    expect(code, output).toBe(0);
    expect(at - signalled).toBeLessThan(SHUTDOWN_TIMEOUT_MS + 2000);
    expect(output).not.toMatch(/"level":50/);

    // Every reply and its extraction job were committed; none is left claimed.
    const db = database?.db ?? (await openDatabase({ dataDir, logger: silentLogger }));
    try {
      expect(await db.prisma.message.count({ where: { role: 'ASSISTANT' } })).toBe(5);
      expect(await db.prisma.job.count()).toBe(5);
      expect(await db.prisma.job.count({ where: { status: 'RUNNING' } })).toBe(0);
    } finally {
      if (!database) await db.close();
    }
  });
});
