import { randomUUID } from 'node:crypto';
import { type ExecutionArgs, getOperationAST } from 'graphql';
import type { ResponseInit as SseResponseInit } from 'graphql-sse';
import { TOKEN_HEADER_KEY, TOKEN_QUERY_KEY } from 'graphql-sse';
import { createHandler } from 'graphql-sse/lib/use/fetch';
import type { Plugin, YogaServerInstance } from 'graphql-yoga';
import type { TokenVerifier } from '../auth/tokens.js';
import type { Context } from './context.js';
import { parseOrErrors, validateOrErrors } from './operation-errors.js';

export interface SingleConnectionOptions {
  verifyToken: TokenVerifier;
  /** Reserved or open streams per user (SUBSCRIPTION_CONNECTIONS_PER_USER). */
  maxStreamsPerUser: number;
  /** A reservation not opened within this time is dropped. */
  reservationTtlMs?: number;
}

interface Reservation {
  userId: string;
  timer: NodeJS.Timeout | null;
}

const json = (status: number, code: string, message: string) =>
  [
    JSON.stringify({ errors: [{ message, extensions: { code } }] }),
    { status, statusText: code, headers: { 'content-type': 'application/json; charset=utf-8' } },
  ] as [string, SseResponseInit];

/** graphql-sse's path (its clients' default); `/graphql` keeps yoga's own SSE. */
export const SSE_PATH = '/graphql/stream';

/**
 * graphql-sse's protocol on `/graphql/stream`, both modes: distinct connections (also served by
 * yoga itself on `/graphql`) and single-connection mode, where PUT reserves a stream, GET with
 * the token opens it, POSTs with the token run operations on it, DELETE stops one. (On
 * `/graphql` a PUT stays 405: nothing but GraphQL-over-HTTP is served there.)
 *
 * Written around graphql-sse's handler instead of @graphql-yoga/plugin-graphql-sse because that
 * plugin keeps every PUT reservation for ever and lets anyone holding a token use it. Here a
 * reservation needs a valid bearer token, belongs to that user (another user's requests with the
 * token get 404), counts against the user's connection cap until its stream ends, and is
 * dropped if not opened within `reservationTtlMs`. Operations run through the app's own envelop
 * (yoga's getEnveloped) with the POST request: same auth, armor limits, masking and rate limits.
 */
export function useSingleConnectionSse(o: SingleConnectionOptions): Plugin {
  const ttl = o.reservationTtlMs ?? 30_000;
  const reservations = new Map<string, Reservation>();
  const perUser = new Map<string, number>();
  /** Requests the plugin makes itself (to drop an unopened reservation). */
  const internal = new WeakSet<Request>();
  let handler: (request: Request) => Promise<Response>;

  const release = (token: string) => {
    const r = reservations.get(token);
    if (!r) return;
    reservations.delete(token);
    if (r.timer) clearTimeout(r.timer);
    const left = (perUser.get(r.userId) ?? 1) - 1;
    if (left <= 0) perUser.delete(r.userId);
    else perUser.set(r.userId, left);
  };

  /** graphql-sse drops a stream when its response is cancelled: open it and cancel at once. */
  const expire = async (token: string) => {
    const request = new Request(`http://internal/graphql?${TOKEN_QUERY_KEY}=${token}`, {
      headers: { accept: 'text/event-stream' },
    });
    internal.add(request);
    try {
      const response = await handler(request);
      await response.body?.cancel();
    } finally {
      release(token);
    }
  };

  async function viewerOf(request: { headers: { get(k: string): string | null | undefined } }) {
    const [scheme, token] = request.headers.get('authorization')?.split(' ') ?? [];
    if (scheme?.toLowerCase() !== 'bearer' || !token) return null;
    return o.verifyToken(token).catch(() => null);
  }

  return {
    onYogaInit({ yoga }) {
      const app = yoga as unknown as YogaServerInstance<Record<string, unknown>, Context>;
      handler = createHandler(
        {
          authenticate: async (req) => {
            const raw = req.raw as Request;
            const given =
              req.headers.get(TOKEN_HEADER_KEY) ??
              new URL(req.url ?? '', 'http://localhost/').searchParams.get(TOKEN_QUERY_KEY);
            if (internal.has(raw) && given) return given;
            const viewer = await viewerOf(req);
            if (!viewer) return json(401, 'UNAUTHENTICATED', 'Authentication required.');
            if (req.method === 'PUT') {
              const open = perUser.get(viewer.id) ?? 0;
              if (open >= o.maxStreamsPerUser) {
                return json(429, 'RATE_LIMITED', 'Too many event streams for this user.');
              }
              const token = randomUUID();
              perUser.set(viewer.id, open + 1);
              const timer = setTimeout(() => void expire(token).catch(() => {}), ttl);
              timer.unref();
              reservations.set(token, { userId: viewer.id, timer });
              return token;
            }
            // No token: distinct-connections mode (a token no stream has).
            if (!given) return '';
            const reservation = reservations.get(given);
            if (reservation?.userId !== viewer.id) {
              return json(404, 'NOT_FOUND', 'Stream not found.');
            }
            return given;
          },
          onSubscribe: async (req, params) => {
            const enveloped = app.getEnveloped({ request: req.raw as Request, params });
            // A refusal is returned as a result with `data: null`: graphql-sse recognises an
            // execution result by its `data` key and streams it to the client.
            const parsed = parseOrErrors(enveloped.parse, params.query);
            if ('errors' in parsed) return { data: null, errors: parsed.errors };
            const { document } = parsed;
            const errors = validateOrErrors(enveloped.validate, enveloped.schema, document);
            if (errors.length > 0) return { data: null, errors };
            const args: ExecutionArgs = {
              schema: enveloped.schema,
              document,
              contextValue: await enveloped.contextFactory(),
              variableValues: params.variables,
              operationName: params.operationName,
            };
            const operation = getOperationAST(document, params.operationName);
            return (
              operation?.operation === 'subscription' ? enveloped.subscribe : enveloped.execute
            )(args) as never;
          },
        },
        yoga.fetchAPI,
      );
    },
    onRequest({ request, endResponse, url }) {
      if (url.pathname !== SSE_PATH) return;
      return handler(request).then((response) => {
        const token =
          request.headers.get(TOKEN_HEADER_KEY) ?? url.searchParams.get(TOKEN_QUERY_KEY);
        const opened =
          request.method === 'GET' &&
          token &&
          response.ok &&
          response.body &&
          reservations.get(token);
        if (!opened || !token || !response.body) {
          endResponse(response);
          return;
        }
        // The stream is open: no expiry now, and the user's slot is freed when it ends.
        if (opened.timer) clearTimeout(opened.timer);
        opened.timer = null;
        const reader = response.body.getReader();
        const body = new ReadableStream<Uint8Array>({
          async pull(controller) {
            const { done, value } = await reader.read();
            if (value) controller.enqueue(value);
            if (done) {
              release(token);
              controller.close();
            }
          },
          async cancel(reason) {
            release(token);
            await reader.cancel(reason);
          },
        });
        endResponse(new Response(body, { status: response.status, headers: response.headers }));
      });
    },
  };
}
