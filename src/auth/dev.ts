import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The user every printed dev token is for, so a restart keeps the same memories. */
export const DEV_USER_ID = '00000000-0000-4000-8000-000000000001';

/**
 * Zero-config mode only (never in production; env.ts refuses): a random HS256 secret kept in
 * the data directory, so dev tokens survive restarts but are useless anywhere else.
 */
export async function loadDevSecret(dataDir: string): Promise<string> {
  const file = join(dataDir, 'dev-jwt-secret');
  try {
    const existing = (await readFile(file, 'utf8')).trim();
    if (existing.length >= 32) return existing;
  } catch {
    // first start: create it below
  }
  await mkdir(dataDir, { recursive: true });
  const secret = randomBytes(32).toString('hex');
  await writeFile(file, `${secret}\n`, { mode: 0o600 });
  return secret;
}
