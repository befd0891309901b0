import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDevSecret } from '../../src/auth/dev.js';
import { createVerifier } from '../../src/auth/tokens.js';
import { cliEnv } from '../../src/cli/common.js';
import { mintCliToken, parseLifetime, tokenCommand } from '../../src/cli/token.js';
import { TEST_JWT_SECRET } from '../helpers/app.js';
import { PROCESS_TEST_TIMEOUT_MS } from '../helpers/timeouts.js';
import { captureIo, runCliProcess } from './helpers.js';

let dir: string;
const user = randomUUID();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'companion-token-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('mintCliToken', () => {
  it('signs with JWT_SECRET, issuer and audience; the server verifier accepts it', async () => {
    const env = cliEnv({
      JWT_SECRET: TEST_JWT_SECRET,
      JWT_ISSUER: 'https://auth.example.com',
      JWT_AUDIENCE: 'authenticated',
      DATA_DIR: dir,
    });
    const minted = await mintCliToken(env, { userId: user, admin: true, expiresInSeconds: 600 });
    expect(minted.secretSource).toBe('JWT_SECRET');
    const verify = createVerifier({
      secret: TEST_JWT_SECRET,
      issuer: 'https://auth.example.com',
      audience: 'authenticated',
      adminUserIds: [],
    });
    expect(await verify(minted.token)).toEqual({ id: user, isAdmin: true });
    const claims = decodeJwt(minted.token);
    expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(600);

    // A verifier expecting another issuer refuses it.
    const other = createVerifier({ secret: TEST_JWT_SECRET, issuer: 'x', adminUserIds: [] });
    await expect(other(minted.token)).rejects.toThrow('Invalid token.');
  });

  it('accepts SUPABASE_JWT_SECRET; without --admin the user is not admin', async () => {
    const env = cliEnv({ SUPABASE_JWT_SECRET: TEST_JWT_SECRET, DATA_DIR: dir });
    const minted = await mintCliToken(env, { userId: user });
    expect(minted.secretSource).toBe('SUPABASE_JWT_SECRET');
    const verify = createVerifier({ secret: TEST_JWT_SECRET, adminUserIds: [] });
    expect(await verify(minted.token)).toEqual({ id: user, isAdmin: false });
  });

  it('zero-config: signs with the server dev secret in DATA_DIR, and never creates one', async () => {
    const empty = cliEnv({ DATA_DIR: join(dir, 'fresh') });
    await expect(mintCliToken(empty, { userId: user })).rejects.toThrow(
      /no JWT_SECRET \(or SUPABASE_JWT_SECRET\) is configured, and there is no dev secret at .*fresh\/dev-jwt-secret\.\nSet JWT_SECRET .* start the server once/,
    );
    await expect(loadDevSecret(join(dir, 'fresh')).then(() => 'created')).resolves.toBe('created');
    const minted = await mintCliToken(empty, { userId: user });
    expect(minted.secretSource).toBe('dev secret');
    const secret = await loadDevSecret(join(dir, 'fresh'));
    expect(await createVerifier({ secret, adminUserIds: [] })(minted.token)).toMatchObject({
      id: user,
    });
  });

  it('production without a secret is a configuration error', () => {
    expect(() => cliEnv({ NODE_ENV: 'production' })).toThrow(
      'JWT_SECRET: required when NODE_ENV=production',
    );
  });

  it('parses lifetimes', () => {
    expect([parseLifetime('90s'), parseLifetime('15m'), parseLifetime('1h')]).toEqual([
      90, 900, 3600,
    ]);
    expect([parseLifetime('7d'), parseLifetime('2w')]).toEqual([604_800, 1_209_600]);
    for (const bad of ['0h', '1y', '366d', 'soon', '1.5h', '-1h', '']) {
      expect(() => parseLifetime(bad), bad).toThrow(/--expires must look like/);
    }
  });
});

describe('npm run token', () => {
  it('rejects bad arguments with exit code 1', async () => {
    const env = cliEnv({ JWT_SECRET: TEST_JWT_SECRET });
    const cases: [string[], RegExp][] = [
      [[], /--user <uuid> is required/],
      [['--user', '42'], /--user must be a UUID/],
      [['--user', user, '--expires', 'forever'], /--expires must look like/],
      [['--user', user, '--role', 'admin'], /Unknown option '--role'/],
    ];
    for (const [argv, message] of cases) {
      const io = captureIo();
      expect(await tokenCommand(argv, io, { env }), argv.join(' ')).toBe(1);
      expect(io.err()).toMatch(message);
      expect(io.out()).toBe('');
    }
    const help = captureIo();
    expect(await tokenCommand(['--help'], help, { env })).toBe(0);
    expect(help.out()).toMatch(/^Usage: npm run -s token -- --user <uuid>/);
  });

  it('runs as a process: only the token on stdout', {
    timeout: PROCESS_TEST_TIMEOUT_MS,
  }, async () => {
    const run = await runCliProcess(
      'src/cli/token.ts',
      ['--user', user, '--admin', '--expires', '2h'],
      { JWT_SECRET: TEST_JWT_SECRET, DATA_DIR: dir },
    );
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    expect(run.stderr).toMatch(
      new RegExp(`^Token for ${user} \\(admin\\), expires .+Z, signed with the JWT_SECRET\\.\\n$`),
    );
    const verify = createVerifier({ secret: TEST_JWT_SECRET, adminUserIds: [] });
    expect(await verify(run.stdout.trim())).toEqual({ id: user, isAdmin: true });
  });
});
