import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { TEST_JWT_SECRET } from './app.js';
import { within } from './wait.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));

export interface ServerProcess {
  base: string;
  /** stdout and stderr, for failure messages. */
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal: NodeJS.Signals): void;
  /** POST a GraphQL operation with a bearer token. */
  gql<T = Record<string, unknown>>(
    token: string,
    query: string,
    variables?: Record<string, unknown>,
  ): Promise<{ data?: T | null; errors?: { extensions?: Record<string, unknown> }[] }>;
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as { port: number };
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

/**
 * The real server (src/index.ts) as a child process, configured only by `env` (plus a port,
 * the test JWT secret and NODE_ENV=test); resolves once /ready answers. Killed with SIGKILL
 * when the test process exits, should a test not do it.
 */
export async function startServerProcess(
  env: Record<string, string>,
  readyWithinMs = 60_000,
): Promise<ServerProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/index.ts'], {
    cwd: REPO,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      TMPDIR: process.env.TMPDIR,
      NODE_ENV: 'test',
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: 'warn',
      JWT_SECRET: TEST_JWT_SECRET,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d) => (output += d));
  child.stderr?.on('data', (d) => (output += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  void exited.then(() => process.off('exit', killOnExit));
  const base = `http://127.0.0.1:${port}`;
  const ready = (async () => {
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`server exited before it was ready:\n${output}`);
      }
      try {
        if ((await fetch(`${base}/ready`)).ok) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  ready.catch(() => {}); // awaited below; a rejection after the deadline must not go unhandled
  try {
    await within(ready, readyWithinMs, 'the server to be ready');
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\n${output}`);
  }
  return {
    base,
    output: () => output,
    exited,
    kill: (signal) => child.kill(signal),
    async gql(token, query, variables = {}) {
      const res = await fetch(`${base}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query, variables }),
      });
      return res.json();
    },
  };
}

/** SIGKILLs the server if it still runs and waits for it to be gone. */
export async function stopServerProcess(server: ServerProcess | null | undefined): Promise<void> {
  if (!server) return;
  server.kill('SIGKILL');
  await within(server.exited, 10_000, 'the server to exit');
}
