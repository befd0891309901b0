/** The production configuration the benches measure: fly.toml's [env]. */
import { readFile } from 'node:fs/promises';

/** [env] of fly.toml as key → value. */
export async function flyEnv(): Promise<Record<string, string>> {
  const text = await readFile('fly.toml', 'utf8');
  const section = /^\[env\]\s*\n([\s\S]*?)(?=^\[)/m.exec(text)?.[1] ?? '';
  const env: Record<string, string> = {};
  for (const m of section.matchAll(/^\s*([A-Z0-9_]+)\s*=\s*"([^"]*)"/gm)) {
    env[m[1] as string] = m[2] as string;
  }
  return env;
}
