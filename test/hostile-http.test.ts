import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/app.js';
import { createVerifier } from '../src/auth/tokens.js';
import { graphqlLimitsFrom } from '../src/composition.js';
import { createTestContext, dataOf, TEST_JWT_SECRET, type TestContext } from './helpers/app.js';
import { personaIds } from './helpers/chat.js';
import {
  expectCleanErrors,
  type RawRequest,
  type RawResponse,
  rawRequest,
  startHttpServer,
} from './helpers/http.js';

/**
 * Hostile HTTP through the real node server (src/http.ts around the yoga app): oversized and
 * malformed bodies, wrong methods and content types, batching, GET mutations. Every answer is
 * a clean 4xx, or a 200 carrying GraphQL errors, with `errors[].extensions.code` whenever the
 * body is JSON; nothing is a 5xx, and the server keeps serving afterwards.
 */
let t: TestContext;
let http: Awaited<ReturnType<typeof startHttpServer>>;
let user: { id: string; token: string };
let personaId: string;

const JSON_TYPE = { 'content-type': 'application/json' };
const VIEWER = JSON.stringify({ query: '{ viewer { id } }' });
const send = (r: RawRequest) => rawRequest(http.port, r);
const post = (body: RawRequest['body'], headers: Record<string, string> = JSON_TYPE) =>
  send({ method: 'POST', path: '/graphql', headers, body });

beforeAll(async () => {
  t = await createTestContext();
  http = await startHttpServer(t);
  user = await t.newUser();
  personaId = (await personaIds(t, user.token)).mira as string;
});
afterAll(async () => {
  await http?.close();
  await t?.close();
});

/** The status; with a JSON body, no data and errors that each carry a client code (`code`). */
function expectClientError(res: RawResponse, what: string, status: number, code?: string) {
  expect(res.status, `${what}: ${res.text.slice(0, 200)}`).toBe(status);
  if (res.json) {
    expect(res.json.data ?? null, what).toBeNull();
    expectCleanErrors(res.json, what);
  }
  if (code) {
    const codes = res.json?.errors?.map((e) => e.extensions?.code);
    expect(codes, what).toEqual([code]);
  }
}

const oversized = () =>
  JSON.stringify({ query: '{ viewer { id } }', x: 'x'.repeat(t.env.MAX_BODY_BYTES) });
const bytes = (...parts: (string | number[])[]) =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));

describe('malformed and oversized bodies', () => {
  const cases: [string, () => RawRequest['body'], number, string][] = [
    ['a body over MAX_BODY_BYTES with Content-Length', oversized, 413, 'PAYLOAD_TOO_LARGE'],
    [
      'an oversized chunked body without Content-Length',
      () => Array.from({ length: 20 }, () => Buffer.alloc(t.env.MAX_BODY_BYTES / 10, 0x20)),
      413,
      'PAYLOAD_TOO_LARGE',
    ],
    ['invalid JSON', () => '{"query": ', 400, 'BAD_REQUEST'],
    ['an empty body', () => '', 400, 'BAD_REQUEST'],
    ['JSON null', () => 'null', 400, 'BAD_REQUEST'],
    ['a JSON string', () => '"{ viewer { id } }"', 400, 'BAD_REQUEST'],
    ['a batch (JSON array)', () => `[${VIEWER},${VIEWER}]`, 400, 'BAD_REQUEST'],
    ['a query that is not a string', () => '{"query": 5}', 400, 'BAD_REQUEST'],
    [
      'variables that are not an object',
      () => '{"query": "{ viewer { id } }", "variables": "x"}',
      400,
      'BAD_REQUEST',
    ],
    [
      'invalid UTF-8 between JSON tokens',
      () => bytes('{"query": "{ viewer { id } }"', [0xff], '}'),
      400,
      'BAD_REQUEST',
    ],
    [
      'invalid UTF-8 inside the operation name',
      () => bytes('{"query": "{ viewer { id } }", "operationName": "', [0xff, 0xfe, 0xc3], '"}'),
      400,
      'OPERATION_RESOLUTION_FAILURE',
    ],
    [
      'JSON nested 20 000 deep (parsed, then refused for want of a token)',
      () =>
        `{"query": "{ viewer { id } }", "variables": {"a": ${'['.repeat(20_000)}${']'.repeat(20_000)}}}`,
      200,
      'UNAUTHENTICATED',
    ],
  ];
  it.each(cases)('%s', async (what, body, status, code) => {
    expectClientError(await post(body()), what, status, code);
  });

  it('reads invalid UTF-8 inside a string value as U+FFFD, not as an error', async () => {
    const query = bytes('{"query": "{ viewer { id } } # ', [0xc3, 0x28, 0xff], '"}');
    const res = await post(query, { ...JSON_TYPE, authorization: `Bearer ${user.token}` });
    expect(res.status).toBe(200);
    expect(res.json?.errors).toBeUndefined();
  });
});

describe('content types, methods and paths', () => {
  const auth = () => ({ authorization: `Bearer ${user.token}` });
  it.each([
    ['text/plain', { 'content-type': 'text/plain' }],
    ['no content type', {}],
    ['application/xml', { 'content-type': 'application/xml' }],
    // No uploads in the schema: multipart parsing is off.
    ['multipart/form-data', { 'content-type': 'multipart/form-data; boundary=x' }],
  ])('refuses %s with 415', async (what, headers) => {
    expectClientError(await post(VIEWER, headers), what, 415);
  });

  // Yoga would also serve the form and application/graphql encodings (a browser sends both
  // cross-site without a preflight); the README's limits table says JSON only (issue 13).
  it.each([
    ['x-www-form-urlencoded', 'application/x-www-form-urlencoded', 'query=%7Bviewer%7Bid%7D%7D'],
    ['application/graphql', 'application/graphql', '{ viewer { id } }'],
  ])('refuses %s with 415, signed in or not', async (what, type, body) => {
    expectClientError(await post(body, { 'content-type': type }), what, 415);
    const signedIn = await post(body, { 'content-type': type, ...auth() });
    expectClientError(signedIn, what, 415, 'UNSUPPORTED_MEDIA_TYPE');
  });

  it('never runs a mutation sent with GET', async () => {
    const before = await t.services.prisma.chatSession.count();
    const mutation = `mutation { startChat(input: { personaId: "${personaId}" }) { session { id } } }`;
    const res = await send({
      method: 'GET',
      path: `/graphql?query=${encodeURIComponent(mutation)}`,
      headers: { ...auth(), accept: 'application/json' },
    });
    expectClientError(res, 'GET mutation', 405, 'BAD_REQUEST');
    expect(await t.services.prisma.chatSession.count()).toBe(before);
  });

  it('answers a query string too large for the headers with 431, a long one with the token limit', async () => {
    expectClientError(
      await send({ method: 'GET', path: `/graphql?query=${'a'.repeat(100_000)}` }),
      'huge GET',
      431,
    );
    const long = `{ viewer { ${'id '.repeat(3000)} } }`;
    const res = await send({
      method: 'GET',
      path: `/graphql?query=${encodeURIComponent(long)}`,
      headers: { accept: 'application/json' },
    });
    expectClientError(res, 'long GET', 200, 'GRAPHQL_PARSE_FAILED');
  });

  it.each([
    ['a bare word', 'garbage'],
    ['a scheme without a token', 'Bearer'],
    ['an empty token', 'Bearer '],
    ['Basic credentials', 'Basic dXNlcjpwYXNz'],
    ['an 8 kB token', `Bearer ${'x'.repeat(8000)}`],
    ['three words', 'Bearer a b c'],
  ])('an Authorization header with %s is UNAUTHENTICATED', async (what, authorization) => {
    const res = await post(VIEWER, { ...JSON_TYPE, authorization });
    expectClientError(res, what, 200, 'UNAUTHENTICATED');
  });

  it.each([
    ['GET', '/nope', 404],
    ['POST', '/nope', 404],
    ['GET', '/graphql/../../etc/passwd', 404],
    ['HEAD', '/graphql', 405],
    ['PUT', '/graphql', 405],
    ['PATCH', '/graphql', 405],
    ['DELETE', '/graphql', 400],
  ] as const)('%s %s answers %i', async (method, path, status) => {
    const res = await send({
      method,
      path,
      headers: JSON_TYPE,
      body: method === 'GET' || method === 'HEAD' ? undefined : VIEWER,
    });
    expectClientError(res, `${method} ${path}`, status);
  });

  it('answers a CORS preflight without running anything', async () => {
    const res = await send({
      method: 'OPTIONS',
      path: '/graphql',
      headers: { origin: 'https://elsewhere.example', 'access-control-request-method': 'POST' },
    });
    expect(res.status).toBe(204);
    expect(res.text).toBe('');
  });
});

describe('after all of it', () => {
  it('still answers /health and a normal query', async () => {
    expect((await send({ method: 'GET', path: '/health' })).status).toBe(200);
    const res = await post(VIEWER, { ...JSON_TYPE, authorization: `Bearer ${user.token}` });
    expect(res.status).toBe(200);
    expect(dataOf(res.json ?? {})).toEqual({ viewer: { id: expect.any(String) } });
  });
});

describe('production mode', () => {
  const appFor = (production: boolean) =>
    createApp({
      services: t.services,
      verifyToken: createVerifier({ secret: TEST_JWT_SECRET, adminUserIds: [] }),
      production,
      limits: graphqlLimitsFrom(t.env),
    });
  const typo = (production: boolean) =>
    appFor(production).fetch('http://test/graphql', {
      method: 'POST',
      headers: { ...JSON_TYPE, authorization: `Bearer ${user.token}` },
      body: JSON.stringify({ query: '{ viewer { idd } personaz { edges { node { id } } } }' }),
    });
  const graphiql = (production: boolean) =>
    appFor(production).fetch('http://test/graphql', { headers: { accept: 'text/html' } });

  it('suggests field names and serves GraphiQL in development', async () => {
    const res = await typo(false);
    expect(await res.text()).toMatch(/Did you mean/);
    const page = await graphiql(false);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
  });

  it('does neither in production', async () => {
    const res = await typo(true);
    const body = await res.text();
    expect(body).not.toMatch(/Did you mean/);
    expect(
      JSON.parse(body).errors.map((e: { extensions?: { code?: string } }) => e.extensions?.code),
    ).toEqual(['GRAPHQL_VALIDATION_FAILED', 'GRAPHQL_VALIDATION_FAILED']);
    const page = await graphiql(true);
    expect(page.headers.get('content-type') ?? '').not.toMatch(/text\/html/);
    expect(await page.text()).not.toMatch(/<html/i);
  });
});
