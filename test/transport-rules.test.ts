import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/app.js';
import { createVerifier } from '../src/auth/tokens.js';
import { graphqlLimitsFrom } from '../src/composition.js';
import { createTestContext, dataOf, TEST_JWT_SECRET, type TestContext } from './helpers/app.js';
import { personaIds, startChat } from './helpers/chat.js';

/**
 * Issue 13, defects 3, 4, 7, 8 and 9: what the HTTP transport accepts. Nothing that writes runs
 * on GET (a streamed turn included), bodies are JSON only, the invalid-JSON error does not quote
 * the body, introspection and CORS follow their settings.
 */
let t: TestContext;
let user: { id: string; token: string };
let personaId: string;
let sessionId: string;

beforeAll(async () => {
  t = await createTestContext();
  user = await t.newUser();
  personaId = (await personaIds(t, user.token)).mira as string;
  sessionId = (await startChat(t, user.token, personaId)).sessionId;
});
afterAll(() => t?.close());

const appWith = (o: { production?: boolean; introspection?: boolean; cors?: string[] } = {}) =>
  createApp({
    services: t.services,
    verifyToken: createVerifier({ secret: TEST_JWT_SECRET, adminUserIds: [] }),
    production: o.production ?? false,
    limits: graphqlLimitsFrom(t.env),
    introspection: o.introspection,
    corsOrigins: o.cors,
  });

const codes = (body: { errors?: { extensions?: { code?: unknown } }[] }) =>
  (body.errors ?? []).map((e) => e.extensions?.code);

const messageCount = () => t.services.prisma.message.count({ where: { userId: user.id } });

const STREAM = `subscription($i: SendMessageInput!) { sendMessageStream(input: $i) {
  ... on ReplyDone { turn { reply { id } } } } }`;

describe('defect 3: nothing that writes runs on GET', () => {
  it('refuses a streamed turn (subscription) over GET with 405 and stores nothing', async () => {
    const before = await messageCount();
    const variables = { i: { sessionId, content: 'secret words', clientMessageId: 'get-1' } };
    for (const accept of ['text/event-stream', 'application/json']) {
      const url = `http://test/graphql?query=${encodeURIComponent(STREAM)}&variables=${encodeURIComponent(JSON.stringify(variables))}`;
      const res = await t.app.fetch(url, {
        headers: { accept, authorization: `Bearer ${user.token}` },
      });
      expect(res.status, accept).toBe(405);
      expect(res.headers.get('allow')).toBe('POST');
      const text = await res.text();
      expect(text).toContain('"code":"BAD_REQUEST"');
      expect(text).not.toContain('secret words');
    }
    expect(await messageCount()).toBe(before);
  });

  it('refuses a subscription picked by operationName among queries', async () => {
    const doc = `query Q { viewer { id } } ${STREAM.replace('subscription(', 'subscription S(')}`;
    const res = await t.app.fetch(
      `http://test/graphql?query=${encodeURIComponent(doc)}&operationName=S`,
      { headers: { accept: 'text/event-stream', authorization: `Bearer ${user.token}` } },
    );
    expect(res.status).toBe(405);
  });

  it('still answers queries over GET', async () => {
    const res = await t.app.fetch(
      `http://test/graphql?query=${encodeURIComponent('{ viewer { id } }')}`,
      { headers: { accept: 'application/json', authorization: `Bearer ${user.token}` } },
    );
    expect(res.status).toBe(200);
    expect(dataOf(await res.json())).toEqual({ viewer: { id: expect.any(String) } });
  });
});

describe('defect 4: only application/json bodies', () => {
  const mutation = `mutation { startChat(input: { personaId: "${'P'}" }) { session { id } } }`;
  it.each([
    [
      'application/x-www-form-urlencoded',
      () => `query=${encodeURIComponent(mutation.replace('"P"', JSON.stringify(personaId)))}`,
    ],
    ['application/graphql', () => mutation.replace('"P"', JSON.stringify(personaId))],
    ['application/graphql+json', () => JSON.stringify({ query: '{ viewer { id } }' })],
    ['text/plain', () => JSON.stringify({ query: '{ viewer { id } }' })],
  ])('refuses %s with 415 and runs nothing', async (type, body) => {
    const before = await t.services.prisma.chatSession.count();
    const res = await t.app.fetch('http://test/graphql', {
      method: 'POST',
      headers: { 'content-type': type, authorization: `Bearer ${user.token}` },
      body: body(),
    });
    expect(res.status).toBe(415);
    expect(codes(await res.json())).toEqual(['UNSUPPORTED_MEDIA_TYPE']);
    expect(await t.services.prisma.chatSession.count()).toBe(before);
  });

  it('accepts application/json with a charset', async () => {
    const res = await t.app.fetch('http://test/graphql', {
      method: 'POST',
      headers: {
        'content-type': 'application/json; charset=utf-8',
        authorization: `Bearer ${user.token}`,
      },
      body: JSON.stringify({ query: '{ viewer { id } }' }),
    });
    expect(res.status).toBe(200);
  });
});

describe('defect 7: the invalid-JSON error does not quote the body', () => {
  it.each([false, true])('production %s', async (production) => {
    const res = await appWith({ production }).fetch('http://test/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"query": "{ viewer { id } }", "leak": "my-password',
    });
    const text = await res.text();
    expect(text).not.toContain('originalError');
    expect(text).not.toContain('my-password');
    expect(codes(JSON.parse(text))).toEqual(['BAD_REQUEST']);
  });
});

describe('defect 8: GRAPHQL_INTROSPECTION', () => {
  const introspect = (app: ReturnType<typeof appWith>) =>
    app.fetch('http://test/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${user.token}` },
      body: JSON.stringify({ query: '{ __schema { queryType { name } } __typename }' }),
    });

  it('is off by default in production, on in development, and follows the setting', async () => {
    const prod = await (await introspect(appWith({ production: true }))).json();
    expect(new Set(codes(prod))).toEqual(new Set(['GRAPHQL_VALIDATION_FAILED']));
    expect(prod.data ?? null).toBeNull();
    const dev = await (await introspect(appWith())).json();
    expect(dataOf(dev)).toMatchObject({ __schema: { queryType: { name: 'Query' } } });
    const prodOn = await (
      await introspect(appWith({ production: true, introspection: true }))
    ).json();
    expect(dataOf(prodOn)).toMatchObject({ __schema: { queryType: { name: 'Query' } } });
    const devOff = await (await introspect(appWith({ introspection: false }))).json();
    expect(new Set(codes(devOff))).toEqual(new Set(['GRAPHQL_VALIDATION_FAILED']));
  });

  it('keeps __typename, which clients need', async () => {
    const res = await appWith({ production: true }).fetch('http://test/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${user.token}` },
      body: JSON.stringify({ query: '{ viewer { __typename } }' }),
    });
    expect(dataOf(await res.json())).toEqual({ viewer: { __typename: 'User' } });
  });
});

describe('defect 9: CORS_ORIGINS', () => {
  const ALLOWED = 'https://app.example.com';
  const EVIL = 'https://evil.example';
  const preflight = (app: ReturnType<typeof appWith>, origin: string) =>
    app.fetch('http://test/graphql', {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type, authorization',
      },
    });
  const simple = (app: ReturnType<typeof appWith>, origin: string) =>
    app.fetch('http://test/graphql', {
      method: 'POST',
      headers: {
        origin,
        'content-type': 'application/json',
        authorization: `Bearer ${user.token}`,
      },
      body: JSON.stringify({ query: '{ viewer { id } }' }),
    });
  const allowOrigin = (res: Response) => res.headers.get('access-control-allow-origin');

  it('production without a list reflects nothing', async () => {
    const app = appWith({ production: true });
    for (const res of [await preflight(app, EVIL), await simple(app, EVIL)]) {
      expect(allowOrigin(res)).toBeNull();
      expect(res.headers.get('access-control-allow-credentials')).toBeNull();
    }
  });

  it.each([true, false])('a list allows its origins only (production %s)', async (production) => {
    const app = appWith({ production, cors: [ALLOWED] });
    for (const res of [await preflight(app, ALLOWED), await simple(app, ALLOWED)]) {
      expect(allowOrigin(res)).toBe(ALLOWED);
      expect(res.headers.get('access-control-allow-credentials')).toBe('true');
    }
    expect(
      (await preflight(app, ALLOWED)).headers.get('access-control-allow-headers') ?? '',
    ).toMatch(/authorization/i);
    for (const res of [await preflight(app, EVIL), await simple(app, EVIL)]) {
      expect(allowOrigin(res)).toBeNull();
    }
  });

  it('development without a list keeps reflecting the origin', async () => {
    const app = appWith();
    expect(allowOrigin(await preflight(app, EVIL))).toBe(EVIL);
    expect(allowOrigin(await simple(app, EVIL))).toBe(EVIL);
  });
});
