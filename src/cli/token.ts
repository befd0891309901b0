import { access } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { loadDevSecret } from '../auth/dev.js';
import { mintToken } from '../auth/tokens.js';
import type { Env } from '../env.js';
import {
  type CliDeps,
  CliError,
  type CliIo,
  cliEnv,
  guarded,
  isEntryPoint,
  parseCliArgs,
  requireUuid,
  runCli,
  usageError,
} from './common.js';

const USAGE = `Usage: npm run -s token -- --user <uuid> [--admin] [--expires 1h]

Prints a bearer token (HS256) the server accepts, signed with JWT_SECRET (or
SUPABASE_JWT_SECRET), with JWT_ISSUER / JWT_AUDIENCE when those are set. In zero-config
development (no secret configured) it signs with the dev secret the server keeps in
DATA_DIR/dev-jwt-secret, so start the server once first (from the same directory or with the
same DATA_DIR). Only the token goes to stdout: TOKEN=$(npm run -s token -- --user <uuid>).

Options:
  --user <uuid>     the token's subject (the user id)
  --admin           add app_metadata.role = "admin"
  --expires <time>  lifetime: <n>s, <n>m, <n>h, <n>d or <n>w, at most 365d (default 1h)
  -h, --help        this help`;

const HINT = 'Run `npm run token -- --help` for usage.';

const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 } as const;
const MAX_SECONDS = 365 * 86_400;

/** "90m" → 5400. Only the units jose and people agree on; no months (ambiguous length). */
export function parseLifetime(value: string): number {
  const match = /^(\d+)([smhdw])$/.exec(value.trim());
  const unit = match?.[2] as keyof typeof UNIT_SECONDS | undefined;
  const seconds = match && unit ? Number(match[1]) * UNIT_SECONDS[unit] : Number.NaN;
  if (!(seconds > 0) || seconds > MAX_SECONDS) {
    throw usageError(
      `--expires must look like 30m, 12h or 7d (more than 0, at most 365d), got "${value}"`,
    );
  }
  return seconds;
}

export interface MintedToken {
  token: string;
  expiresAt: Date;
  /** Which secret signed it. */
  secretSource: 'JWT_SECRET' | 'SUPABASE_JWT_SECRET' | 'dev secret';
}

/**
 * The secret the server verifies with (the same choice as composition.ts resolveAuth). The dev
 * secret is only read, never created here: a token signed with a secret the server does not
 * have (a CLI run from another directory) would fail later and confusingly.
 */
async function signingSecret(
  env: Env,
): Promise<{ secret: string; source: MintedToken['secretSource'] }> {
  if (env.JWT_SECRET) return { secret: env.JWT_SECRET, source: 'JWT_SECRET' };
  if (env.SUPABASE_JWT_SECRET) {
    return { secret: env.SUPABASE_JWT_SECRET, source: 'SUPABASE_JWT_SECRET' };
  }
  const file = join(env.DATA_DIR, 'dev-jwt-secret');
  try {
    await access(file);
  } catch {
    throw new CliError(
      `no JWT_SECRET (or SUPABASE_JWT_SECRET) is configured, and there is no dev secret at ` +
        `${resolve(file)}.\nSet JWT_SECRET to the server's secret, or start the server once in ` +
        'zero-config mode (it creates the dev secret and prints a ready admin token), then run ' +
        'this from the same directory or with the same DATA_DIR.',
    );
  }
  return { secret: await loadDevSecret(env.DATA_DIR), source: 'dev secret' };
}

export async function mintCliToken(
  env: Env,
  claims: { userId: string; admin?: boolean; expiresInSeconds?: number },
  now: Date = new Date(),
): Promise<MintedToken> {
  const { secret, source } = await signingSecret(env);
  const lifetime = claims.expiresInSeconds ?? 3600;
  const token = await mintToken(
    { secret, issuer: env.JWT_ISSUER, audience: env.JWT_AUDIENCE },
    { sub: claims.userId, admin: claims.admin ?? false, expiresIn: `${lifetime}s` },
  );
  return { token, expiresAt: new Date(now.getTime() + lifetime * 1000), secretSource: source };
}

export async function tokenCommand(argv: string[], io: CliIo, deps: CliDeps = {}): Promise<number> {
  return guarded(io, HINT, async () => {
    const { values, positionals } = parseCliArgs(argv, {
      user: { type: 'string' },
      admin: { type: 'boolean' },
      expires: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    });
    if (values.help) {
      io.stdout.write(`${USAGE}\n`);
      return 0;
    }
    if (positionals.length > 0) throw usageError(`unexpected argument "${positionals[0]}"`);
    const userId = requireUuid(values.user, '--user');
    const expiresInSeconds = parseLifetime(values.expires ?? '1h');
    const env = deps.env ?? cliEnv();
    const minted = await mintCliToken(env, { userId, admin: values.admin, expiresInSeconds });
    io.stdout.write(`${minted.token}\n`);
    io.stderr.write(
      `Token for ${userId}${values.admin ? ' (admin)' : ''}, expires ` +
        `${minted.expiresAt.toISOString()}, signed with the ${minted.secretSource}.\n`,
    );
    return 0;
  });
}

if (isEntryPoint(import.meta.url)) runCli(tokenCommand);
