import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createApp } from '../src/app.js';
import { createVerifier } from '../src/auth/tokens.js';
import { graphqlLimitsFrom } from '../src/composition.js';
import { createTestContext, type GraphQLResponse, type TestContext } from './helpers/app.js';
import {
  apolloClient,
  type Endpoints,
  graphqlSseClient,
  graphqlWsClient,
  type TestClient,
  urqlClient,
} from './helpers/clients.js';
import { rawRequest } from './helpers/http.js';
import { startServer } from './helpers/transports.js';
import { within } from './helpers/wait.js';

/**
 * The limits HTTP has apply on every streaming transport too: graphql-armor, the per-user rate
 * limits, message sizes, connection caps; and a shutdown closes streams instead of waiting on them.
 */
let t: TestContext;
let server: Awaited<ReturnType<typeof startServer>>;

beforeAll(async () => {
  t = await createTestContext({
    env: {
      MEMORY_EMBEDS_PER_MINUTE: '2',
      SUBSCRIPTION_CONNECTIONS_PER_USER: '2',
      MEMORY_EVENTS_PER_USER: '1',
    },
  });
  server = await startServer(t);
});
afterAll(async () => {
  await server?.close();
  await t?.close();
});

const CLIENTS: [string, (e: Endpoints, token: string) => TestClient][] = [
  ['graphql-ws', (e, token) => graphqlWsClient(e, token)],
  ['graphql-sse distinct connections', (e, token) => graphqlSseClient(e, token, false)],
  ['graphql-sse single connection', (e, token) => graphqlSseClient(e, token, true)],
  ['Apollo Client (HttpLink)', (e, token) => apolloClient(e, token, 'http')],
  ['Apollo Client (GraphQLWsLink)', (e, token) => apolloClient(e, token, 'ws')],
  ['urql (fetch)', (e, token) => urqlClient(e, token, 'http')],
  ['urql (graphql-ws)', (e, token) => urqlClient(e, token, 'ws')],
];

/** The first result of an operation; a client that throws the errors gives them as a result. */
async function once(client: TestClient, query: string, variables?: Record<string, unknown>) {
  const read = async (): Promise<GraphQLResponse> => {
    const iterator = client.run(query, variables);
    try {
      const { value } = await iterator.next();
      return value ?? { data: null };
    } catch (err) {
      return { data: null, errors: Array.isArray(err) ? err : [{ message: String(err) }] };
    } finally {
      await iterator.return?.();
    }
  };
  return within(read(), 20_000, query.slice(0, 40));
}

const codes = (r: GraphQLResponse) => (r.errors ?? []).map((e) => e.extensions?.code);

const ALIASES = `query { ${Array.from({ length: 16 }, (_, i) => `a${i}: viewer { id }`).join(' ')} }`;
const SEARCH = /* GraphQL */ `
  query { profileMemories(search: "where do I live?") { edges { node { id } } } }
`;

describe.each(CLIENTS)('%s', (_name, makeClient) => {
  it('applies graphql-armor and the per-user rate limits', async () => {
    const user = await t.newUser();
    const client = makeClient(server, user.token);
    try {
      expect(codes(await once(client, ALIASES))).toEqual(['GRAPHQL_VALIDATION_FAILED']);
      // MEMORY_EMBEDS_PER_MINUTE is 2 here: the third search of the minute is refused.
      expect(codes(await once(client, SEARCH))).toEqual([]);
      expect(codes(await once(client, SEARCH))).toEqual([]);
      expect(codes(await once(client, SEARCH))).toEqual(['RATE_LIMITED']);
    } finally {
      await client.close();
    }
  });
});

/** A raw graphql-transport-ws socket: resolves with the close code once the server closes it. */
function rawSocket(
  init: Record<string, unknown> | null,
  protocol = 'graphql-transport-ws',
  url = server.ws,
) {
  const socket = new WebSocket(url, protocol);
  const closed = new Promise<number>((resolve) => socket.on('close', (code) => resolve(code)));
  const acked = new Promise<boolean>((resolve) => {
    socket.on('message', (data) => {
      if (JSON.parse(String(data)).type === 'connection_ack') resolve(true);
    });
    socket.on('close', () => resolve(false));
  });
  socket.on('error', () => {});
  socket.on('open', () => {
    if (init) socket.send(JSON.stringify({ type: 'connection_init', payload: init }));
  });
  return { socket, closed: within(closed, 20_000, 'socket close'), acked };
}

describe('WebSocket', () => {
  it('needs a valid token in connection_init', async () => {
    expect(await rawSocket({}).closed).toBe(4403);
    expect(await rawSocket({ authorization: 'Bearer not-a-token' }).closed).toBe(4403);
    const user = await t.newUser();
    // Another subprotocol (the legacy subscriptions-transport-ws) is never acknowledged.
    expect(await rawSocket({ authorization: `Bearer ${user.token}` }, 'graphql-ws').acked).toBe(
      false,
    );
  });

  it('caps the sockets of one user (SUBSCRIPTION_CONNECTIONS_PER_USER = 2)', async () => {
    const user = await t.newUser();
    const init = { authorization: `Bearer ${user.token}` };
    const first = rawSocket(init);
    const second = rawSocket(init);
    expect(await first.acked).toBe(true);
    expect(await second.acked).toBe(true);
    expect(await rawSocket(init).closed).toBe(4429);
    // A closed socket frees its slot.
    first.socket.close();
    await first.closed;
    const again = rawSocket(init);
    expect(await again.acked).toBe(true);
    second.socket.close();
    again.socket.close();
  });

  it('closes a socket that sends a message larger than MAX_BODY_BYTES (1009)', async () => {
    const user = await t.newUser();
    const s = rawSocket({ authorization: `Bearer ${user.token}` });
    expect(await s.acked).toBe(true);
    const query = `query { viewer { id } } # ${'x'.repeat(t.env.MAX_BODY_BYTES)}`;
    s.socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query } }));
    expect(await s.closed).toBe(1009);
  });
});

describe('graphql-sse single connection', () => {
  const put = (token?: string) =>
    rawRequest(server.port, {
      method: 'PUT',
      path: '/graphql/stream',
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });

  it('reserves streams only for an authenticated user, at most 2 at once, not for others', async () => {
    expect((await put()).status).toBe(401);
    const user = await t.newUser();
    const first = await put(user.token);
    expect(first.status).toBe(201);
    expect((await put(user.token)).status).toBe(201);
    const third = await put(user.token);
    expect(third.status).toBe(429);
    expect(third.json?.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');

    // Someone else holding the token cannot open or use the stream.
    const stranger = await t.newUser();
    const stolen = await rawRequest(server.port, {
      method: 'POST',
      path: '/graphql/stream',
      headers: {
        authorization: `Bearer ${stranger.token}`,
        'content-type': 'application/json',
        'x-graphql-event-stream-token': first.text,
      },
      body: JSON.stringify({ query: '{ viewer { id } }', extensions: { operationId: '1' } }),
    });
    expect(stolen.status).toBe(404);
  });

  it('refuses an operation body larger than MAX_BODY_BYTES (413)', async () => {
    const user = await t.newUser();
    const token = (await put(user.token)).text;
    const res = await rawRequest(server.port, {
      method: 'POST',
      path: '/graphql/stream',
      headers: {
        authorization: `Bearer ${user.token}`,
        'content-type': 'application/json',
        'x-graphql-event-stream-token': token,
      },
      body: JSON.stringify({ query: `{ viewer { id } } # ${'x'.repeat(t.env.MAX_BODY_BYTES)}` }),
    });
    expect(res.status).toBe(413);
  });
});

describe('memoryEvents', () => {
  it('caps open subscriptions per watched user (MEMORY_EVENTS_PER_USER = 1)', async () => {
    const user = await t.newUser();
    const client = graphqlWsClient(server, user.token);
    const events = client.run('subscription { memoryEvents { kind } }');
    try {
      const first = events.next();
      await expect
        .poll(() => t.services.memoryEvents.subscriberCount(user.id), { timeout: 15_000 })
        .toBe(1);
      expect(codes(await once(client, 'subscription { memoryEvents { kind } }'))).toEqual([
        'RATE_LIMITED',
      ]);
      void first.catch(() => {});
    } finally {
      await events.return?.();
      await client.close();
    }
  });
});

describe('shutdown', () => {
  it('completes memoryEvents streams and closes WebSockets with 1001', async () => {
    const other = await createTestContext();
    const own = await startServer(other);
    try {
      const user = await other.newUser();
      const ws = rawSocket({ authorization: `Bearer ${user.token}` }, undefined, own.ws);
      expect(await ws.acked).toBe(true);
      const sse = graphqlSseClient(own, user.token, false);
      const events = sse.run('subscription { memoryEvents { kind } }');
      const ended = events.next();
      await expect
        .poll(() => other.services.memoryEvents.subscriberCount(user.id), { timeout: 15_000 })
        .toBe(1);
      // What src/index.ts does on SIGTERM before closing the HTTP server.
      await other.services.memoryEvents.close();
      await own.sockets.close();
      expect(await within(ended, 20_000, 'the SSE stream to end')).toMatchObject({ done: true });
      expect(await ws.closed).toBe(1001);
      await sse.close();
    } finally {
      await own.close();
      await other.close();
    }
  });
});

describe('GraphiQL', () => {
  const page = async (app: ReturnType<typeof createApp>) => {
    const res = await app.fetch('http://test/graphql', { headers: { accept: 'text/html' } });
    return { status: res.status, type: res.headers.get('content-type'), html: await res.text() };
  };
  const appWith = (production: boolean, devToken?: string) =>
    createApp({
      services: t.services,
      verifyToken: createVerifier({ secret: 'x'.repeat(40), adminUserIds: [] }),
      production,
      limits: graphqlLimitsFrom(t.env),
      devToken,
    });

  it('is served from npm (no CDN) with the dev token pre-filled; never in production', async () => {
    const devToken = `dev.${randomUUID()}`;
    const dev = await page(appWith(false, devToken));
    expect(dev.status).toBe(200);
    expect(dev.type).toContain('text/html');
    expect(dev.html).toContain('renderYogaGraphiQL');
    // Every script and stylesheet is inline: nothing to fetch from another host.
    expect(dev.html).not.toMatch(/<script[^>]+src=/i);
    expect(dev.html).not.toMatch(/<link[^>]+href="https?:/i);
    expect(dev.html).not.toMatch(/unpkg\.com|jsdelivr|cdn\./i);
    expect(dev.html).toContain(`Bearer ${devToken}`);

    // Without a dev token (configured JWTs) nothing is pre-filled.
    expect((await page(appWith(false))).html).not.toContain('Bearer ');
    // Production: no GraphiQL at all, even if a token were handed over.
    const prod = await page(appWith(true, devToken));
    expect(prod.type ?? '').not.toContain('text/html');
    expect(prod.html).not.toContain(devToken);
  });
});
