/**
 * Spawning the server under test (or the bare baseline) as its own process on 127.0.0.1, with
 * readiness by /health polling or a READY line, and a clean SIGTERM stop.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { get } from 'node:http';
import { createServer as createNetServer } from 'node:net';

/** A free TCP port on 127.0.0.1 (the server is told to use it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const address = s.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export function healthy(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = get({ host: '127.0.0.1', port, path: '/health', timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
  });
}

export interface Spawned {
  child: ChildProcess;
  pid: number;
  port: number;
  spawnedAt: number;
  readyAt: number;
  stderr: () => string;
  stop(): Promise<void>;
}

export async function spawnServer(
  entry: string,
  env: Record<string, string>,
  ready: 'health' | 'stdout',
  /** Extra node flags, e.g. --cpu-prof (not allowed in NODE_OPTIONS). */
  nodeArgs: readonly string[] = [],
): Promise<Spawned> {
  const port = await freePort();
  const spawnedAt = performance.now();
  // TypeScript entries run through tsx (as `npm start` does); compiled .js entries run plainly.
  const args = [...nodeArgs, ...(entry.endsWith('.ts') ? ['--import', 'tsx', entry] : [entry])];
  const child = spawn(process.execPath, args, {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      ...env,
      PORT: String(port),
    },
    // The app's pino logs (one line per operation at info) go to /dev/null: serialised, not kept.
    stdio: ['ignore', ready === 'stdout' ? 'pipe' : 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr?.on('data', (c: Buffer) => {
    err = (err + c.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  if (ready === 'stdout') {
    await new Promise<void>((resolve, reject) => {
      child.stdout?.on('data', (c: Buffer) => {
        if (c.toString().includes('READY')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`${entry} exited (${code}): ${err}`)));
    });
  } else {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`${entry} exited (${child.exitCode}): ${err}`);
      if (await healthy(port)) break;
      if (performance.now() - spawnedAt > 60_000)
        throw new Error(`${entry} not healthy after 60 s: ${err}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  return {
    child,
    pid: child.pid as number,
    port,
    spawnedAt,
    readyAt: performance.now(),
    stderr: () => err,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * Compiles the server like the Dockerfile does (`tsc -p tsconfig.build.json`), into
 * bench/.build (or `outDir`, e.g. a subdirectory of it so two benchmarks never share one;
 * removed by `cleanup`), so it runs as `node …/src/index.js` without tsx.
 * Node resolves node_modules and prisma/migrations by walking up from there, as in /app.
 */
export async function buildCompiled(
  outDir = 'bench/.build',
): Promise<{ entry: string; cleanup(): Promise<void> }> {
  const started = performance.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json', '--outDir', outDir],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr?.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`tsc failed:\n${out.slice(-3000)}`)),
    );
  });
  // Then bundled as `npm run build` does (scripts/bundle.ts): the entry points the machines
  // start become single files.
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/bundle.ts', outDir], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let out = '';
    child.stderr?.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`bundle failed:\n${out.slice(-3000)}`)),
    );
  });
  process.stderr.write(
    `[bench] compiled the server in ${((performance.now() - started) / 1000).toFixed(1)} s\n`,
  );
  return {
    entry: `${outDir}/src/index.js`,
    cleanup: () => rm(outDir, { recursive: true, force: true }),
  };
}
