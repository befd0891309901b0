import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/**
 * The first start of an embedded database (a DATA_DIR without PG_VERSION) runs PGlite's initdb
 * in a short-lived child process, and the server then opens the initialised directory as on
 * any later start.
 *
 * Why: PGlite runs initdb in a second WASM instance of Postgres inside the calling process.
 * Its memory is garbage afterwards, but the process never gives all of it back: a server whose
 * data directory was created in-process stayed ~130 MiB above one that opened an existing
 * directory, for its whole life (BENCHMARKS.md §4: 510 vs 379 MiB after the first turns). A
 * child's memory goes away with it. The price is one more start of the Postgres backend and of
 * a Node process (a fraction of a second), once per data directory.
 *
 * The child loads the very PGlite build this process would (resolved from here, so it works
 * from src/ under tsx and from the bundle alike), with the same start parameters.
 *
 * Returns whether it initialised the directory (false: it already held a database).
 */
export async function initDataDirApart(dataDir: string, startParams: string[]): Promise<boolean> {
  if (existsSync(join(dataDir, 'PG_VERSION'))) return false;
  const pglite = createRequire(import.meta.url).resolve('@electric-sql/pglite');
  // CommonJS, so the child needs neither a file of its own nor the parent's loader (tsx).
  // `--liftoff-only`: V8 runs PGlite's WebAssembly in its baseline compiler only. By default it
  // also recompiles the hot functions with its optimising compiler on background threads, which
  // pays off in a long-lived process but not in one that runs initdb once and exits: measured,
  // the child took ~5 s of CPU instead of ~7.5 s, on the cores the server itself is starting on
  // (BENCHMARKS.md §4). Set at run time rather than on the command line so that a V8 without the
  // flag only prints a warning instead of refusing to start.
  const script = `
require('node:v8').setFlagsFromString('--liftoff-only');
const { PGlite } = require(${JSON.stringify(pglite)});
PGlite.create(${JSON.stringify(dataDir)}, { startParams: ${JSON.stringify(startParams)} })
  .then((db) => db.close())
  .then(() => process.exit(0), (err) => {
    process.stderr.write(String(err && err.stack || err));
    process.exit(1);
  });`;
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    child.once('error', reject);
    child.once('exit', (code, signal) =>
      code === 0
        ? resolve()
        : reject(
            new Error(
              `initialising the embedded database in ${dataDir} failed (${signal ?? `exit ${code}`}): ${stderr.trim()}`,
            ),
          ),
    );
  });
  return true;
}

/** What PGlite.create would otherwise read and compile itself (its `pgliteWasmModule`, `fsBundle`). */
export interface PgliteArtifacts {
  pgliteWasmModule: WebAssembly.Module;
  fsBundle: Blob;
}

/**
 * Reads PGlite's Postgres build (pglite.wasm, ~9 MB) and file bundle (pglite.data, ~6 MB) and
 * compiles the former, for `PGlite.create`'s options of the same names.
 *
 * Why: on a first start this process only waits while the child above runs initdb (seconds of
 * CPU, on the other core); doing here what PGlite.create would do next, at the same time, takes
 * that work off the first start's path (BENCHMARKS.md §4). `WebAssembly.compile` is the
 * asynchronous compile, on V8's background threads. Resolves to undefined if the files are not
 * where this PGlite version keeps them (PGlite then loads them itself, as on any later start).
 */
export async function loadPgliteArtifacts(): Promise<PgliteArtifacts | undefined> {
  try {
    const dist = dirname(createRequire(import.meta.url).resolve('@electric-sql/pglite'));
    const [pgliteWasmModule, bundle] = await Promise.all([
      readFile(join(dist, 'pglite.wasm')).then((bytes) => WebAssembly.compile(bytes)),
      readFile(join(dist, 'pglite.data')),
    ]);
    return { pgliteWasmModule, fsBundle: new Blob([bundle]) };
  } catch {
    return undefined;
  }
}
