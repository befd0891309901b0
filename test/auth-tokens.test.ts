import { createHmac, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeGlobalID } from '@pothos/plugin-relay';
import {
  exportJWK,
  exportSPKI,
  generateKeyPair,
  type JWK,
  type JWTPayload,
  SignJWT,
  UnsecuredJWT,
} from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/app.js';
import { type AuthConfig, createVerifier } from '../src/auth/tokens.js';
import { graphqlLimitsFrom, resolveAuth } from '../src/composition.js';
import { parseEnv } from '../src/env.js';
import {
  codesOf,
  createTestContext,
  type GraphQLResponse,
  type TestContext,
} from './helpers/app.js';

/**
 * Token verification as deployed: a JWKS served over HTTP from 127.0.0.1 (RS256, ES256, EdDSA),
 * an HS256 shared secret, both at once, and every way a token can be wrong. Each case goes
 * through the GraphQL endpoint, so a verifier bug shows up as the status and code clients see.
 */
const SECRET = 'supabase-style-jwt-secret-0123456789-abcdefghij';
const ISSUER = 'https://project.supabase.co/auth/v1';
const AUDIENCE = 'authenticated';
const VIEWER = /* GraphQL */ 'query { viewer { id } }';
const ADMIN_ONLY = /* GraphQL */ 'query { providerInfo { chatProvider } }';

type Alg = 'RS256' | 'ES256' | 'EdDSA' | 'Ed25519';
interface SigningKey {
  alg: Alg;
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

async function signingKey(alg: Alg, kid = `${alg}-${randomUUID().slice(0, 8)}`) {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { alg, kid, privateKey, jwk, publicKey } satisfies SigningKey & { publicKey: CryptoKey };
}

/** A JWKS endpoint whose keys (and health) the test changes, counting the fetches it serves. */
async function startJwksServer() {
  const state = { keys: [] as JWK[], failing: false, fetches: 0 };
  const server = createServer((_req, res) => {
    state.fetches++;
    if (state.failing) {
      res.writeHead(503).end('unavailable');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: state.keys }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    state,
    url: `http://127.0.0.1:${port}/auth/v1/.well-known/jwks.json`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const now = () => Math.floor(Date.now() / 1000);

/** Claims shaped like a Supabase access token for `sub`. */
function supabaseClaims(sub: string, extra: JWTPayload = {}): JWTPayload {
  return {
    sub,
    aud: AUDIENCE,
    iss: ISSUER,
    role: 'authenticated',
    email: 'someone@example.com',
    phone: '',
    app_metadata: { provider: 'email', providers: ['email'] },
    user_metadata: { email_verified: true },
    aal: 'aal1',
    amr: [{ method: 'password', timestamp: now() - 60 }],
    session_id: randomUUID(),
    is_anonymous: false,
    iat: now() - 5,
    exp: now() + 3600,
    ...extra,
  };
}

function sign(claims: JWTPayload, key: SigningKey | Uint8Array, header: { kid?: string } = {}) {
  const jwt = new SignJWT(claims);
  if (key instanceof Uint8Array)
    return jwt.setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(key);
  return jwt
    .setProtectedHeader({ alg: key.alg, kid: header.kid ?? key.kid, typ: 'JWT' })
    .sign(key.privateKey);
}

let t: TestContext;
let jwks: Awaited<ReturnType<typeof startJwksServer>>;
let keys: Record<Alg, SigningKey & { publicKey: CryptoKey }>;
const secretBytes = new TextEncoder().encode(SECRET);

/** The app of the test context, with a verifier built from `config` (issuer and audience set). */
function appWith(config: Partial<AuthConfig> = {}) {
  const app = createApp({
    services: t.services,
    verifyToken: createVerifier({
      secret: SECRET,
      jwksUrl: jwks.url,
      issuer: ISSUER,
      audience: AUDIENCE,
      adminUserIds: [],
      ...config,
    }),
    production: false,
    limits: graphqlLimitsFrom(t.env),
  });
  return async (query: string, token: string) => {
    const res = await app.fetch('http://test/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query }),
    });
    return { status: res.status, ...((await res.json()) as GraphQLResponse) };
  };
}

let gql: ReturnType<typeof appWith>;

beforeAll(async () => {
  t = await createTestContext();
  jwks = await startJwksServer();
  const [rs, es, ed, ed2] = await Promise.all([
    signingKey('RS256'),
    signingKey('ES256'),
    signingKey('EdDSA'),
    signingKey('Ed25519'),
  ]);
  keys = { RS256: rs, ES256: es, EdDSA: ed, Ed25519: ed2 };
  jwks.state.keys = Object.values(keys).map((k) => k.jwk);
  gql = appWith();
});
afterAll(async () => {
  await jwks?.close();
  await t?.close();
});

async function expectViewer(res: Awaited<ReturnType<typeof gql>>, sub: string) {
  expect(res.errors).toBeUndefined();
  expect(res.data).toEqual({ viewer: { id: encodeGlobalID('User', sub) } });
}

function expectRejected(res: Awaited<ReturnType<typeof gql>>, what: string) {
  expect(res.status, what).toBeLessThan(500);
  expect(res.data ?? null, what).toBeNull();
  expect(codesOf(res), what).toEqual(['UNAUTHENTICATED']);
}

describe('tokens from a JWKS', () => {
  it.each(['RS256', 'ES256', 'EdDSA', 'Ed25519'] as const)(
    'accepts a valid %s token',
    async (alg) => {
      const sub = randomUUID();
      await expectViewer(await gql(VIEWER, await sign(supabaseClaims(sub), keys[alg])), sub);
    },
  );

  it('fetches the key set once and serves later tokens from its cache', async () => {
    const before = jwks.state.fetches;
    for (const alg of ['RS256', 'ES256', 'EdDSA'] as const) {
      const sub = randomUUID();
      await expectViewer(await gql(VIEWER, await sign(supabaseClaims(sub), keys[alg])), sub);
    }
    expect(jwks.state.fetches).toBe(before);
  });

  it('refetches the key set when a token carries an unknown kid (key rotation)', async () => {
    const rotating = appWith({ jwks: { cooldownMs: 50 } });
    const sub = randomUUID();
    await expectViewer(await rotating(VIEWER, await sign(supabaseClaims(sub), keys.RS256)), sub);

    const next = await signingKey('ES256', 'rotated-key');
    jwks.state.keys = [next.jwk, ...Object.values(keys).map((k) => k.jwk)];
    await new Promise((resolve) => setTimeout(resolve, 60));
    const fetches = jwks.state.fetches;
    await expectViewer(await rotating(VIEWER, await sign(supabaseClaims(sub), next)), sub);
    expect(jwks.state.fetches).toBe(fetches + 1);
  });

  it('refetches at most once per cooldown however many unknown kids arrive', async () => {
    const guarded = appWith({ jwks: { cooldownMs: 60_000 } });
    const sub = randomUUID();
    await expectViewer(await guarded(VIEWER, await sign(supabaseClaims(sub), keys.ES256)), sub);
    const fetches = jwks.state.fetches;
    for (let i = 0; i < 5; i++) {
      const token = await sign(supabaseClaims(sub), keys.ES256, { kid: `forged-${i}` });
      expectRejected(await guarded(VIEWER, token), `forged kid ${i}`);
    }
    expect(jwks.state.fetches).toBe(fetches);
  });

  it('keeps verifying with the last good keys while the JWKS endpoint fails', async () => {
    const cached = appWith({ jwks: { cacheMaxAgeMs: 50, cooldownMs: 50 } });
    const sub = randomUUID();
    await expectViewer(await cached(VIEWER, await sign(supabaseClaims(sub), keys.EdDSA)), sub);
    jwks.state.failing = true;
    try {
      await new Promise((resolve) => setTimeout(resolve, 60));
      await expectViewer(await cached(VIEWER, await sign(supabaseClaims(sub), keys.EdDSA)), sub);
    } finally {
      jwks.state.failing = false;
    }
  });

  it('answers SERVICE_UNAVAILABLE (not UNAUTHENTICATED, not a 500) when no keys can be fetched', async () => {
    const dead = await startJwksServer();
    await dead.close();
    const unreachable = appWith({ jwksUrl: dead.url });
    const res = await unreachable(VIEWER, await sign(supabaseClaims(randomUUID()), keys.RS256));
    expect(res.status).toBeLessThan(500);
    expect(res.data ?? null).toBeNull();
    expect(codesOf(res)).toEqual(['SERVICE_UNAVAILABLE']);
  });
});

describe('HS256 (Supabase) tokens', () => {
  it('keeps a verified token, which still expires on time and is refused then (moving clock)', async () => {
    let clock = Date.now();
    const verify = createVerifier({
      secret: SECRET,
      adminUserIds: [],
      clockToleranceSeconds: 5,
      now: () => clock,
    });
    const user = randomUUID();
    const exp = Math.floor(clock / 1000) + 60;
    const token = await sign(supabaseClaims(user, { exp }), secretBytes);
    expect(await verify(token)).toEqual({ id: user, isAdmin: false });
    expect(await verify(token)).toEqual({ id: user, isAdmin: false });
    clock = (exp + 4) * 1000; // past exp, inside the tolerance
    expect((await verify(token)).id).toBe(user);
    clock = (exp + 5) * 1000; // exp <= now - tolerance: expired, as jose counts it
    await expect(verify(token)).rejects.toThrow('Token expired.');
    await expect(verify(token)).rejects.toThrow('Token expired.');
    // Another token of the same user, with a signature that is not the secret's: refused even
    // though the user's valid token was verified before.
    const [header, claims] = token.split('.');
    await expect(verify(`${header}.${claims}.${'A'.repeat(43)}`)).rejects.toThrow('Invalid token.');
  });

  it('accepts a Supabase access token unchanged; app_metadata.role = admin makes an admin', async () => {
    const user = randomUUID();
    await expectViewer(await gql(VIEWER, await sign(supabaseClaims(user), secretBytes)), user);
    expect(codesOf(await gql(ADMIN_ONLY, await sign(supabaseClaims(user), secretBytes)))).toEqual([
      'FORBIDDEN',
    ]);

    const admin = supabaseClaims(randomUUID(), {
      app_metadata: { provider: 'email', providers: ['email'], role: 'admin' },
    });
    const res = await gql(ADMIN_ONLY, await sign(admin, secretBytes));
    expect(res.errors).toBeUndefined();
    expect(res.data).toEqual({ providerInfo: { chatProvider: 'offline' } });
  });

  it('works with the secret alone (no JWKS configured), and rejects asymmetric tokens then', async () => {
    const secretOnly = appWith({ jwksUrl: undefined });
    const sub = randomUUID();
    await expectViewer(await secretOnly(VIEWER, await sign(supabaseClaims(sub), secretBytes)), sub);
    expectRejected(await secretOnly(VIEWER, await sign(supabaseClaims(sub), keys.RS256)), 'RS256');
  });

  it('rejects HS256 when only a JWKS is configured', async () => {
    const jwksOnly = appWith({ secret: undefined });
    const sub = randomUUID();
    await expectViewer(await jwksOnly(VIEWER, await sign(supabaseClaims(sub), keys.ES256)), sub);
    expectRejected(await jwksOnly(VIEWER, await sign(supabaseClaims(sub), secretBytes)), 'HS256');
  });
});

describe('bad tokens are UNAUTHENTICATED, never a 500', () => {
  it('rejects each way a token can be wrong', async () => {
    const sub = randomUUID();
    const other = await signingKey('RS256', keys.RS256.kid);
    const publicPem = new TextEncoder().encode(await exportSPKI(keys.RS256.publicKey));
    const publicJwk = new TextEncoder().encode(JSON.stringify(keys.RS256.jwk));
    const cases: Record<string, string> = {
      expired: await sign(supabaseClaims(sub, { exp: now() - 120 }), keys.RS256),
      'not yet valid': await sign(supabaseClaims(sub, { nbf: now() + 120 }), keys.ES256),
      'no exp': await sign({ ...supabaseClaims(sub), exp: undefined }, keys.ES256),
      'wrong signature (another key, same kid)': await sign(supabaseClaims(sub), other),
      'wrong HS256 secret': await sign(
        supabaseClaims(sub),
        new TextEncoder().encode('another-secret-that-is-long-enough-0123456789'),
      ),
      'alg none': new UnsecuredJWT(supabaseClaims(sub)).encode(),
      'HS256 signed with the RSA public key (PEM)': await sign(supabaseClaims(sub), publicPem),
      'HS256 signed with the RSA public key (JWK)': await sign(supabaseClaims(sub), publicJwk),
      'HS256 with a JWKS kid': await new SignJWT(supabaseClaims(sub))
        .setProtectedHeader({ alg: 'HS256', kid: keys.RS256.kid })
        .sign(publicPem),
      'wrong issuer': await sign(supabaseClaims(sub, { iss: 'https://evil.example' }), keys.RS256),
      'no issuer': await sign({ ...supabaseClaims(sub), iss: undefined }, keys.RS256),
      'wrong audience': await sign(supabaseClaims(sub, { aud: 'anon' }), keys.EdDSA),
      'non-UUID sub': await sign(supabaseClaims('user-42'), keys.RS256),
      'no sub (a Supabase anon key)': await sign(
        { iss: ISSUER, aud: AUDIENCE, role: 'anon', exp: now() + 60 },
        secretBytes,
      ),
      'unsupported alg (RS512)': await new SignJWT(supabaseClaims(sub))
        .setProtectedHeader({ alg: 'RS512', kid: keys.RS256.kid })
        .sign(keys.RS256.privateKey)
        .catch(() => 'eyJhbGciOiJSUzUxMiJ9.e30.c2ln'),
      garbage: 'not-a-jwt',
      'three garbage parts': 'a.b.c',
      'bad base64 header': '!!!.eyJzdWIiOiJ4In0.sig',
      'JSON header that is not an object': `${Buffer.from('[]').toString('base64url')}.e30.c2ln`,
      huge: 'a'.repeat(20_000),
    };
    for (const [what, token] of Object.entries(cases)) {
      expectRejected(await gql(VIEWER, token), what);
    }
  });

  it('rejects tampered tokens, malformed claims and odd headers', async () => {
    const sub = randomUUID();
    const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const valid = await sign(supabaseClaims(sub), secretBytes);
    const [header, , signature] = valid.split('.');
    const withPayload = (claims: unknown) => `${header}.${b64(claims)}.${signature}`;
    const hs = (claims: JWTPayload) =>
      new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(secretBytes);
    // Signed by hand: jose will not sign what it would not verify.
    const hmac = (protectedHeader: unknown, claims: unknown) => {
      const input = `${b64(protectedHeader)}.${b64(claims)}`;
      return `${input}.${createHmac('sha256', SECRET).update(input).digest('base64url')}`;
    };
    // Controls: the hand-made tokens below differ from these only in what each case names.
    await expectViewer(
      await gql(VIEWER, hmac({ alg: 'HS256', typ: 'JWT' }, supabaseClaims(sub))),
      sub,
    );
    await expectViewer(await gql(VIEWER, `${header}.${valid.split('.')[1]}.${signature}`), sub);
    const cases: Record<string, string> = {
      'payload swapped under a valid signature': withPayload(supabaseClaims(randomUUID())),
      'admin claim added under a valid signature': withPayload(
        supabaseClaims(sub, { app_metadata: { role: 'admin' } }),
      ),
      'signature stripped': `${header}.${b64(supabaseClaims(sub))}.`,
      'signature of another token': `${header}.${b64(supabaseClaims(sub))}.${(await sign(supabaseClaims(randomUUID()), secretBytes)).split('.')[2]}`,
      'empty sub': await hs(supabaseClaims('')),
      'numeric sub': await hs({ ...supabaseClaims(sub), sub: 42 as unknown as string }),
      'UUID sub with a newline': await hs(supabaseClaims(`${sub}\n`)),
      'UUID sub with SQL': await hs(supabaseClaims(`${sub}' OR '1'='1`)),
      'UUID sub with NUL': await hs(supabaseClaims(`${sub}\u0000`)),
      'exp as a string': await hs({ ...supabaseClaims(sub), exp: 'never' as unknown as number }),
      'nbf as a string': await hs({ ...supabaseClaims(sub), nbf: 'now' as unknown as number }),
      'unknown crit header': hmac(
        { alg: 'HS256', crit: ['x-unknown'], 'x-unknown': 1 },
        supabaseClaims(sub),
      ),
      'payload that is an array': withPayload([sub]),
      'payload that is not JSON': `${header}.${Buffer.from('not json').toString('base64url')}.${signature}`,
      'five parts (a JWE)': `${valid}.e30.e30`,
      'HS512 with the shared secret': await new SignJWT(supabaseClaims(sub))
        .setProtectedHeader({ alg: 'HS512' })
        .sign(secretBytes),
      'alg none with a signature': `${b64({ alg: 'none', typ: 'JWT' })}.${b64(supabaseClaims(sub))}.${signature}`,
      'a 10 kB kid': await sign(supabaseClaims(sub), keys.ES256, { kid: 'k'.repeat(10_000) }),
    };
    for (const [what, token] of Object.entries(cases)) {
      expectRejected(await gql(VIEWER, token), what);
    }
  });

  it('tolerates clock skew inside JWT_CLOCK_TOLERANCE_S, and not beyond', async () => {
    const sub = randomUUID();
    const justExpired = await sign(supabaseClaims(sub, { exp: now() - 10 }), keys.RS256);
    const almostValid = await sign(supabaseClaims(sub, { nbf: now() + 10 }), secretBytes);
    await expectViewer(await gql(VIEWER, justExpired), sub);
    await expectViewer(await gql(VIEWER, almostValid), sub);

    const strict = appWith({ clockToleranceSeconds: 0 });
    expectRejected(await strict(VIEWER, justExpired), 'expired, no tolerance');
    expectRejected(await strict(VIEWER, almostValid), 'not yet valid, no tolerance');
  });

  it('reports an expired token as such', async () => {
    const res = await gql(
      VIEWER,
      await sign(supabaseClaims(randomUUID(), { exp: now() - 120 }), keys.ES256),
    );
    expect(res.errors?.[0]?.message).toBe('Token expired.');
  });
});

describe('configuration', () => {
  it('production starts with a JWKS alone, and refuses to start with neither key source', () => {
    expect(() => parseEnv({ NODE_ENV: 'production' })).toThrow(/JWT_SECRET.*JWKS_URL/);
    const env = parseEnv({
      NODE_ENV: 'production',
      JWKS_URL: 'https://x.supabase.co/jwks.json',
      DATABASE_URL: 'postgres://db/companion',
    });
    expect(env.JWT_CLOCK_TOLERANCE_S).toBe(30);
    expect(() => parseEnv({ JWT_CLOCK_TOLERANCE_S: '-1' })).toThrow(/JWT_CLOCK_TOLERANCE_S/);
    expect(() => parseEnv({ JWKS_URL: 'not a url' })).toThrow(/JWKS_URL/);
  });

  it('passes the JWKS, the secret and the tolerance to the verifier; mints a dev token only without both', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'auth-'));
    try {
      const both = await resolveAuth(
        parseEnv({
          JWKS_URL: jwks.url,
          SUPABASE_JWT_SECRET: SECRET,
          JWT_CLOCK_TOLERANCE_S: '5',
          DATA_DIR: dataDir,
        }),
      );
      expect(both.devToken).toBeUndefined();
      expect(both.config).toMatchObject({
        jwksUrl: jwks.url,
        secret: SECRET,
        clockToleranceSeconds: 5,
      });

      const jwksOnly = await resolveAuth(parseEnv({ JWKS_URL: jwks.url, DATA_DIR: dataDir }));
      expect(jwksOnly.devToken).toBeUndefined();
      expect(jwksOnly.config.secret).toBeUndefined();

      const dev = await resolveAuth(parseEnv({ DATA_DIR: dataDir }));
      expect(dev.devToken).toBeTruthy();
      const viewer = await createVerifier(dev.config)(dev.devToken as string);
      expect(viewer.isAdmin).toBe(true);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
