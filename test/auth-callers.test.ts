import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/app.js';
import { type AuthConfig, createVerifier, mintToken } from '../src/auth/tokens.js';
import { graphqlLimitsFrom } from '../src/composition.js';
import { parseEnv, parseServiceKeys } from '../src/env.js';
import { createTestContext, dataOf, TEST_JWT_SECRET, type TestContext } from './helpers/app.js';
import { personaIds, send, startChat } from './helpers/chat.js';
import { PROFILE_MEMORIES } from './helpers/operations.js';

/**
 * Issue 13: defect 1 (a `sub` that is not a string), defect 11 (refusing Supabase anonymous
 * users) and production guard 3 (server-to-server callers: a service_role token or an API key
 * act with admin scope and no user of their own; every call is logged with its key id).
 */
let t: TestContext;
const logs: Record<string, unknown>[] = [];
const KEY_SECRET = 'k'.repeat(40);
const secret = new TextEncoder().encode(TEST_JWT_SECRET);

beforeAll(async () => {
  t = await createTestContext();
});
afterAll(() => t?.close());

function appWith(config: Partial<AuthConfig>) {
  const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line)) });
  return createApp({
    services: { ...t.services, logger },
    verifyToken: createVerifier({ secret: TEST_JWT_SECRET, adminUserIds: [], ...config }),
    production: false,
    limits: graphqlLimitsFrom(t.env),
  });
}

async function gql(
  app: ReturnType<typeof appWith>,
  query: string,
  variables: Record<string, unknown> = {},
  token?: string,
) {
  const res = await app.fetch('http://test/graphql', {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query, variables }),
  });
  return (await res.json()) as {
    data?: Record<string, unknown> | null;
    errors?: { message: string; extensions?: { code?: string } }[];
  };
}
const codes = (res: { errors?: { extensions?: { code?: string } }[] }) =>
  (res.errors ?? []).map((e) => e.extensions?.code);

const sign = (claims: Record<string, unknown>) =>
  new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(secret);

describe('defect 1: a sub that is not a string', () => {
  it.each([
    ['an array holding a UUID', [randomUUID()]],
    ['a number', 42],
    ['an object', { id: randomUUID() }],
    ['null', null],
    ['missing', undefined],
  ])('%s is UNAUTHENTICATED', async (_what, sub) => {
    const token = await sign(sub === undefined ? { role: 'authenticated' } : { sub });
    const res = await gql(appWith({}), '{ viewer { id } }', {}, token);
    expect(codes(res)).toEqual(['UNAUTHENTICATED']);
  });
});

describe('defect 11: AUTH_ANONYMOUS_USERS', () => {
  const anonymous = () => sign({ sub: randomUUID(), is_anonymous: true, role: 'authenticated' });
  it('allows anonymous sign-ins by default', async () => {
    const res = await gql(appWith({}), '{ viewer { id } }', {}, await anonymous());
    expect(dataOf(res)).toEqual({ viewer: { id: expect.any(String) } });
  });
  it('refuses them when set to refuse, and creates no user row', async () => {
    const before = await t.services.prisma.user.count();
    const app = appWith({ anonymousUsers: 'refuse' });
    const res = await gql(app, '{ viewer { id } }', {}, await anonymous());
    expect(codes(res)).toEqual(['UNAUTHENTICATED']);
    expect(res.errors?.[0]?.message).toMatch(/anonymous/i);
    expect(await t.services.prisma.user.count()).toBe(before);
    // A signed-up user (is_anonymous false) still gets in.
    const member = await sign({ sub: randomUUID(), is_anonymous: false });
    expect(dataOf(await gql(app, '{ viewer { id } }', {}, member))).toBeTruthy();
  });
  it('parses the setting', () => {
    expect(parseEnv({}).AUTH_ANONYMOUS_USERS).toBe('allow');
    expect(parseEnv({ AUTH_ANONYMOUS_USERS: 'refuse' }).AUTH_ANONYMOUS_USERS).toBe('refuse');
    expect(() => parseEnv({ AUTH_ANONYMOUS_USERS: 'maybe' })).toThrow(/AUTH_ANONYMOUS_USERS/);
  });
});

const CREATE = `mutation($input: CreatePersonaInput!) { createPersona(input: $input) { persona { slug } } }`;
const STATS = 'query($u: ID) { memoryStats(userId: $u) { profile { total } } }';

describe('guard 3: server-to-server callers', () => {
  let user: { id: string; token: string };
  beforeAll(async () => {
    user = await t.newUser();
    const chat = await startChat(t, user.token, (await personaIds(t, user.token)).mira as string);
    await send(t, user.token, chat.sessionId, "I'm a nurse from Lisbon");
    await t.drainJobs();
  });

  const callers = [
    [
      'an API key',
      { serviceKeys: parseServiceKeys([`backend:${KEY_SECRET}`]) },
      `backend:${KEY_SECRET}`,
      'backend',
    ],
    ['a service_role token', { serviceRole: true }, 'service_role', 'supabase-service-role'],
  ] as const;

  it.each(callers)(
    '%s acts with admin scope, needs an explicit userId, and is logged',
    async (_w, config, credential, keyId) => {
      const app = appWith(config);
      const token =
        credential === 'service_role' ? await sign({ role: 'service_role' }) : credential;
      const users = await t.services.prisma.user.count();
      logs.length = 0;
      const slug = `svc-${randomUUID().slice(0, 8)}`;
      const created = await gql(
        app,
        CREATE,
        { input: { slug, name: 'Svc', description: 'd', greeting: 'g', systemPrompt: 's' } },
        token,
      );
      expect(dataOf(created)).toEqual({ createPersona: { persona: { slug } } });
      const stats = dataOf(await gql(app, STATS, { u: user.id }, token));
      expect(stats).toEqual({ memoryStats: { profile: { total: expect.any(Number) } } });
      const profile = await gql(app, PROFILE_MEMORIES, { userId: user.id }, token);
      expect(codes(profile)).toEqual([]);
      // It is nobody: what acts as "me" is refused with a clear message, nothing is provisioned.
      for (const query of ['{ viewer { id } }', PROFILE_MEMORIES]) {
        const res = await gql(app, query, {}, token);
        expect(codes(res), query).toEqual(['FORBIDDEN']);
        expect(res.errors?.[0]?.message).toMatch(/service key acts as no user/);
      }
      const personaId = (await personaIds(t, user.token)).mira as string;
      const start = await gql(
        app,
        'mutation($p: ID!) { startChat(input: { personaId: $p }) { session { id } } }',
        { p: personaId },
        token,
      );
      expect(codes(start)).toEqual(['FORBIDDEN']);
      expect(await t.services.prisma.user.count()).toBe(users);
      // Every call left a line with the key id, never the credential.
      const calls = logs.filter((l) => l.msg === 'service call');
      expect(calls.length).toBe(6);
      expect(calls.every((l) => l.serviceKeyId === keyId)).toBe(true);
      expect(JSON.stringify(logs)).not.toContain(KEY_SECRET);
    },
  );

  it('refuses a wrong secret, an unknown key id, and service_role when not enabled', async () => {
    const app = appWith({ serviceKeys: parseServiceKeys([`backend:${KEY_SECRET}`]) });
    for (const token of [`backend:${'x'.repeat(40)}`, `other:${KEY_SECRET}`, `backend:`, ':']) {
      expect(codes(await gql(app, STATS, {}, token)), token).toEqual(['UNAUTHENTICATED']);
    }
    const noKeys = appWith({});
    expect(codes(await gql(noKeys, STATS, {}, `backend:${KEY_SECRET}`))).toEqual([
      'UNAUTHENTICATED',
    ]);
    const serviceRole = await sign({ role: 'service_role' });
    expect(codes(await gql(noKeys, STATS, {}, serviceRole))).toEqual(['UNAUTHENTICATED']);
  });

  it('a user token is not upgraded by a role claim', async () => {
    const app = appWith({ serviceRole: true });
    const token = await sign({ sub: randomUUID(), role: 'service_role' });
    expect(codes(await gql(app, STATS, {}, token))).toEqual(['FORBIDDEN']);
    const plain = await mintToken({ secret: TEST_JWT_SECRET }, { sub: randomUUID() });
    expect(codes(await gql(app, STATS, {}, plain))).toEqual(['FORBIDDEN']);
  });

  it('SERVICE_API_KEYS must be id:secret pairs with long secrets and unique ids', () => {
    expect([...parseServiceKeys([`a:${KEY_SECRET}`, `b.c-d:${KEY_SECRET}x`]).keys()]).toEqual([
      'a',
      'b.c-d',
    ]);
    for (const bad of [
      ['nocolon'],
      [`:${KEY_SECRET}`],
      ['a:short'],
      [`a:${KEY_SECRET}`, `a:${KEY_SECRET}`],
    ]) {
      expect(() => parseServiceKeys(bad), bad.join(',')).toThrow(/SERVICE_API_KEYS/);
    }
    expect(() => parseEnv({ SERVICE_API_KEYS: 'a:short' })).toThrow(/SERVICE_API_KEYS/);
  });
});
