import { ApolloClient, gql as apolloGql, HttpLink, InMemoryCache } from '@apollo/client';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { fetchExchange, subscriptionExchange, Client as UrqlClient } from '@urql/core';
import { createClient as createSseClient } from 'graphql-sse';
import { createClient as createWsClient } from 'graphql-ws';
import WebSocket from 'ws';
import type { GraphQLResponse } from './app.js';

export interface Endpoints {
  http: string;
  ws: string;
}

/** One real client library, reduced to "run an operation, iterate its results". */
export interface TestClient {
  name: string;
  run(query: string, variables?: Record<string, unknown>): AsyncIterableIterator<GraphQLResponse>;
  close(): Promise<void> | void;
}

/**
 * A push source (an Observable's sink) as an async iterator: results queue until read; the
 * iterator ends when the source completes, and return() unsubscribes.
 */
export function pushToIterator<T>(
  start: (sink: { next(v: T): void; error(e: unknown): void; complete(): void }) => () => void,
): AsyncIterableIterator<T> {
  const queue: T[] = [];
  let failure: unknown = null;
  let finished = false;
  let wake: (() => void) | null = null;
  const notify = () => {
    wake?.();
    wake = null;
  };
  const stop = start({
    next: (v) => {
      queue.push(v);
      notify();
    },
    error: (e) => {
      failure = e ?? new Error('subscription failed');
      notify();
    },
    complete: () => {
      finished = true;
      notify();
    },
  });
  const iterator: AsyncIterableIterator<T> = {
    async next() {
      for (;;) {
        const value = queue.shift();
        if (value !== undefined) return { done: false, value };
        if (failure) throw failure;
        if (finished) return { done: true, value: undefined };
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    },
    async return() {
      finished = true;
      stop();
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]: () => iterator,
  };
  return iterator;
}

const auth = (token: string) => ({ authorization: `Bearer ${token}` });

export function graphqlWsClient(e: Endpoints, token: string): TestClient {
  const client = createWsClient({
    url: e.ws,
    webSocketImpl: WebSocket,
    connectionParams: auth(token),
    retryAttempts: 0,
  });
  return {
    name: 'graphql-ws',
    run: (query, variables) =>
      client.iterate({ query, variables }) as AsyncIterableIterator<GraphQLResponse>,
    close: () => client.dispose(),
  };
}

export function graphqlSseClient(
  e: Endpoints,
  token: string,
  singleConnection: boolean,
): TestClient {
  const client = createSseClient({
    // Single-connection mode is graphql-sse's own path; distinct connections use yoga's SSE.
    url: singleConnection ? `${e.http}/stream` : e.http,
    singleConnection,
    headers: auth(token),
    retryAttempts: 0,
  });
  return {
    name: `graphql-sse (${singleConnection ? 'single connection' : 'distinct connections'})`,
    run: (query, variables) =>
      client.iterate({ query, variables }) as AsyncIterableIterator<GraphQLResponse>,
    close: () => client.dispose(),
  };
}

/** Apollo Client core with a standard link: HttpLink (multipart subscriptions) or GraphQLWsLink. */
export function apolloClient(e: Endpoints, token: string, over: 'http' | 'ws'): TestClient {
  // GraphQLWsLink inspects errors with the global WebSocket class, which browsers and Node 22
  // have and Node 20 lacks.
  const global = globalThis as { WebSocket?: unknown };
  global.WebSocket ??= WebSocket;
  const ws =
    over === 'ws'
      ? createWsClient({
          url: e.ws,
          webSocketImpl: WebSocket,
          connectionParams: auth(token),
          retryAttempts: 0,
        })
      : null;
  const link = ws ? new GraphQLWsLink(ws) : new HttpLink({ uri: e.http, headers: auth(token) });
  const client = new ApolloClient({ link, cache: new InMemoryCache() });
  return {
    name: `Apollo Client (${over === 'ws' ? 'GraphQLWsLink' : 'HttpLink multipart'})`,
    run: (query, variables) => {
      const document = apolloGql(query);
      const isSubscription = /^\s*subscription\b/.test(query);
      return pushToIterator<GraphQLResponse>((sink) => {
        const source = isSubscription
          ? client.subscribe({ query: document, variables, fetchPolicy: 'no-cache' })
          : /^\s*mutation\b/.test(query)
            ? client.mutate({ mutation: document, variables, fetchPolicy: 'no-cache' })
            : client.query({ query: document, variables, fetchPolicy: 'no-cache' });
        const toResponse = (r: { data?: unknown; error?: unknown }): GraphQLResponse => {
          const error = r.error as { errors?: GraphQLResponse['errors'] } | undefined;
          return {
            data: (r.data as Record<string, unknown>) ?? null,
            ...(error ? { errors: error.errors ?? [{ message: String(error) }] } : {}),
          };
        };
        if ('then' in source) {
          source.then(
            (r) => {
              sink.next(toResponse(r));
              sink.complete();
            },
            (err: { errors?: GraphQLResponse['errors'] }) => {
              sink.next({ data: null, errors: err.errors ?? [{ message: String(err) }] });
              sink.complete();
            },
          );
          return () => {};
        }
        const sub = source.subscribe({
          next: (r) => sink.next(toResponse(r)),
          error: (err: { errors?: GraphQLResponse['errors'] }) => {
            sink.next({ data: null, errors: err.errors ?? [{ message: String(err) }] });
            sink.complete();
          },
          complete: () => sink.complete(),
        });
        return () => sub.unsubscribe();
      });
    },
    close: async () => {
      client.stop();
      await ws?.dispose();
    },
  };
}

/** urql core: subscriptions over fetch (SSE), or over graphql-ws with subscriptionExchange. */
export function urqlClient(e: Endpoints, token: string, over: 'http' | 'ws'): TestClient {
  const ws =
    over === 'ws'
      ? createWsClient({
          url: e.ws,
          webSocketImpl: WebSocket,
          connectionParams: auth(token),
          retryAttempts: 0,
        })
      : null;
  const exchanges = ws
    ? [
        subscriptionExchange({
          forwardSubscription: (request) => ({
            subscribe: (sink) => ({
              unsubscribe: ws.subscribe({ ...request, query: request.query ?? '' }, sink),
            }),
          }),
        }),
        fetchExchange,
      ]
    : [fetchExchange];
  const client = new UrqlClient({
    url: e.http,
    exchanges,
    fetchSubscriptions: !ws,
    fetchOptions: { headers: auth(token) },
    requestPolicy: 'network-only',
  });
  return {
    name: `urql (${over === 'ws' ? 'subscriptionExchange + graphql-ws' : 'fetchSubscriptions'})`,
    run: (query, variables) =>
      pushToIterator<GraphQLResponse>((sink) => {
        const kind = /^\s*subscription\b/.test(query)
          ? 'subscription'
          : /^\s*mutation\b/.test(query)
            ? 'mutation'
            : 'query';
        const source =
          kind === 'subscription'
            ? client.subscription(query, variables ?? {})
            : kind === 'mutation'
              ? client.mutation(query, variables ?? {})
              : client.query(query, variables ?? {});
        const { unsubscribe } = source.subscribe((r) => {
          const errors = r.error?.graphQLErrors.map((g) => ({
            message: g.message,
            extensions: g.extensions as Record<string, unknown>,
          }));
          sink.next({
            data: (r.data as Record<string, unknown>) ?? null,
            ...(r.error
              ? { errors: errors?.length ? errors : [{ message: r.error.message }] }
              : {}),
          });
          // A subscription's end is not signalled here: tests stop reading after its last event.
          if (kind !== 'subscription') sink.complete();
        });
        return unsubscribe;
      }),
    close: async () => {
      await ws?.dispose();
    },
  };
}
