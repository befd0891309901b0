import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type GraphQLResponse, type TestContext } from './helpers/app.js';
import { personaIds, startChat } from './helpers/chat.js';
import {
  apolloClient,
  type Endpoints,
  graphqlSseClient,
  graphqlWsClient,
  type TestClient,
  urqlClient,
} from './helpers/clients.js';
import { startServer } from './helpers/transports.js';
import { within } from './helpers/wait.js';

/**
 * Every client library a product would pick, against the real listening server: each streams a
 * turn to its ReplyDone and then receives the memory event the worker's extraction publishes.
 * On the PostgreSQL tier the event goes through NOTIFY and the LISTEN connection, the path a
 * worker in another process takes.
 */
const STREAM = /* GraphQL */ `
  subscription Stream($input: SendMessageInput!) {
    sendMessageStream(input: $input) {
      __typename
      ... on ReplyDelta { text }
      ... on ReplyDone { turn { reply { id content } } }
    }
  }
`;

const EVENTS = /* GraphQL */ `
  subscription Events($userId: ID) {
    memoryEvents(userId: $userId) {
      kind memoryId userId layer missedBefore
      memory { id content layer }
    }
  }
`;

const REMEMBER = /* GraphQL */ `
  mutation Remember($input: RememberMemoryInput!) {
    rememberMemory(input: $input) { duplicate memory { id content layer } }
  }
`;

interface MemoryEventData {
  kind: string;
  memoryId: string | null;
  userId: string;
  layer: string | null;
  missedBefore: number;
  memory: { id: string; content: string; layer: string } | null;
}

let t: TestContext;
let server: Awaited<ReturnType<typeof startServer>>;
let endpoints: Endpoints;

beforeAll(async () => {
  t = await createTestContext();
  server = await startServer(t);
  endpoints = server;
});
afterAll(async () => {
  await server?.close();
  await t?.close();
});

const CLIENTS: [string, (e: Endpoints, token: string) => TestClient][] = [
  ['graphql-ws', (e, token) => graphqlWsClient(e, token)],
  ['graphql-sse distinct connections', (e, token) => graphqlSseClient(e, token, false)],
  ['graphql-sse single connection', (e, token) => graphqlSseClient(e, token, true)],
  ['Apollo Client over HttpLink (multipart)', (e, token) => apolloClient(e, token, 'http')],
  ['Apollo Client over GraphQLWsLink', (e, token) => apolloClient(e, token, 'ws')],
  ['urql fetchSubscriptions (SSE)', (e, token) => urqlClient(e, token, 'http')],
  ['urql subscriptionExchange (graphql-ws)', (e, token) => urqlClient(e, token, 'ws')],
];

/** Reads a subscription in the background; `take(n)` waits (bounded) for the first n results. */
function collect(iterator: AsyncIterableIterator<GraphQLResponse>) {
  const results: GraphQLResponse[] = [];
  let ended = false;
  let wake = null as (() => void) | null;
  const reading = (async () => {
    try {
      for await (const r of iterator) {
        results.push(r);
        wake?.();
      }
    } catch (err) {
      // graphql-ws and graphql-sse throw a refused operation's errors: keep them as a result.
      const errors = Array.isArray(err) ? err : [{ message: String(err) }];
      results.push({ data: null, errors });
    } finally {
      ended = true;
      wake?.();
    }
  })();
  reading.catch(() => {});
  return {
    results,
    async take(n: number, what: string): Promise<GraphQLResponse[]> {
      const wait = async () => {
        while (results.length < n && !ended) {
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
        }
        return results.slice(0, n);
      };
      return within(wait(), 20_000, what);
    },
    stop: () => iterator.return?.(),
  };
}

/** Waits (bounded, polling) until the user has `n` memoryEvents subscriptions open here. */
async function subscribed(userId: string, n = 1) {
  await expect
    .poll(() => t.services.memoryEvents.subscriberCount(userId), { timeout: 15_000 })
    .toBe(n);
}

describe.each(CLIENTS)('%s', (_name, makeClient) => {
  it('streams a turn to ReplyDone, then gets the memory event of its extraction', async () => {
    const user = await t.newUser();
    const { mira } = await personaIds(t, user.token);
    const { sessionId } = await startChat(t, user.token, mira as string);
    const client = makeClient(endpoints, user.token);
    try {
      const events = collect(client.run(EVENTS));
      await subscribed(user.id);

      const texts: string[] = [];
      let done: { reply: { id: string; content: string } } | null = null;
      const input = {
        sessionId,
        content: "I'm a nurse from Lisbon and I love hiking",
        clientMessageId: 'c-1',
      };
      for await (const result of client.run(STREAM, { input })) {
        expect(result.errors).toBeUndefined();
        const event = result.data?.sendMessageStream as {
          __typename: string;
          text?: string;
          turn?: { reply: { id: string; content: string } };
        };
        if (event.__typename === 'ReplyDelta') texts.push(event.text ?? '');
        if (event.__typename === 'ReplyDone') {
          done = event.turn ?? null;
          break;
        }
      }
      expect(done?.reply.content).toBeTruthy();
      expect(texts.join('')).toBe(done?.reply.content);

      expect(await t.drainJobs()).toBeGreaterThan(0);
      const stored = await t.services.prisma.memory.findMany({ where: { userId: user.id } });
      expect(stored.length).toBeGreaterThan(0);
      const [first] = await events.take(1, 'the first memory event');
      expect(first?.errors).toBeUndefined();
      const event = first?.data?.memoryEvents as MemoryEventData;
      expect(event.kind).toBe('ADDED');
      expect(event.missedBefore).toBe(0);
      expect(stored.map((m) => m.content)).toContain(event.memory?.content);
      await events.stop();
    } finally {
      await client.close();
    }
  });
});

describe('memory events are private', () => {
  it("a stranger's subscription sees none of another user's events; an admin's does", async () => {
    const owner = await t.newUser();
    const stranger = await t.newUser();
    const admin = await t.newUser({ admin: true });
    const ownerClient = graphqlWsClient(endpoints, owner.token);
    const strangerClient = graphqlWsClient(endpoints, stranger.token);
    const adminClient = graphqlSseClient(endpoints, admin.token, true);
    try {
      // Asking for someone else's events is refused outright.
      const [refused] = await collect(strangerClient.run(EVENTS, { userId: owner.id })).take(
        1,
        'the refusal',
      );
      expect(refused?.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');

      const own = collect(strangerClient.run(EVENTS));
      const watched = collect(adminClient.run(EVENTS, { userId: owner.id }));
      await subscribed(stranger.id);
      await subscribed(owner.id);

      const [added] = await collect(
        ownerClient.run(REMEMBER, { input: { layer: 'PROFILE', content: 'Owner keeps bees' } }),
      ).take(1, 'rememberMemory');
      expect(added?.errors).toBeUndefined();
      const [seen] = await watched.take(1, "the admin's event");
      expect((seen?.data?.memoryEvents as MemoryEventData | undefined)?.memory?.content).toBe(
        'Owner keeps bees',
      );

      // The stranger's own next event is the first thing its stream carries: nothing of the
      // owner's arrived before it.
      const [mine] = await collect(
        strangerClient.run(REMEMBER, { input: { layer: 'PROFILE', content: 'Stranger rows' } }),
      ).take(1, "the stranger's rememberMemory");
      expect(mine?.errors).toBeUndefined();
      const [firstOwn] = await own.take(1, "the stranger's own event");
      expect((firstOwn?.data?.memoryEvents as MemoryEventData | undefined)?.memory?.content).toBe(
        'Stranger rows',
      );
      expect(own.results).toHaveLength(1);
      await own.stop();
      await watched.stop();
    } finally {
      await ownerClient.close();
      await strangerClient.close();
      await adminClient.close();
    }
  });
});
