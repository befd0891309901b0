import { open, readFile, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';

export const LOCK_FILE = 'companion.lock';

/** The embedded data directory is held by another live process. */
export class DataDirLocked extends Error {
  override readonly name = 'DataDirLocked';
  /** A string code, so the CLIs print the message as one line (src/cli/common.ts). */
  readonly code = 'EDATADIRLOCKED';
  constructor(
    readonly dataDir: string,
    readonly pid: number,
  ) {
    const file = join(resolve(dataDir), LOCK_FILE);
    super(
      `The embedded database in ${resolve(dataDir)} is in use by process ${pid}. PGlite is ` +
        'single-process: stop that process (e.g. the server started with `npm start`) and run ' +
        'this again, or set DATABASE_URL to a PostgreSQL both can share. If no such process ' +
        `exists, delete ${file}.`,
    );
  }
}

/** True if a process with this pid exists (EPERM: it exists, owned by someone else). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function holderOf(file: string): Promise<number | null> {
  try {
    const pid = Number.parseInt(await readFile(file, 'utf8'), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/**
 * Takes the data directory for this process: a lock file holding our pid, created exclusively
 * (O_EXCL). PGlite itself does not lock its directory, and a second process writing to it
 * (e.g. `npm run personas -- import` while the server runs) reports success while its writes
 * are lost or corrupt the files. A lock whose process is dead (a crash, kill -9) is stale and is
 * taken over. Returns the release function (it removes the file only while it is still ours).
 *
 * Hand-written: the npm lockfile packages (proper-lockfile and kin) judge staleness by mtime,
 * which would need a heartbeat from a long-running server; the pid is exact on one machine, the
 * only place an embedded directory is shared.
 */
export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  const file = join(dataDir, LOCK_FILE);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await open(file, 'wx', 0o600);
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      return async () => {
        if ((await holderOf(file)) === process.pid) await unlink(file).catch(() => {});
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = await holderOf(file);
    // Our own pid counts as held: a second open in this process would corrupt it just the same.
    if (holder !== null && alive(holder)) throw new DataDirLocked(dataDir, holder);
    // Stale (dead pid, or an unreadable half-written file): remove it and try again.
    await unlink(file).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
  }
  throw new Error(`could not lock ${file}`);
}
