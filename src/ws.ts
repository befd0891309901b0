import type { Server } from 'node:http';
import { type ExecutionArgs, getOperationAST } from 'graphql';
import { CloseCode } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import type { App } from './app.js';
import type { TokenVerifier } from './auth/tokens.js';
import { parseOrErrors, validateOrErrors } from './graphql/operation-errors.js';
import type { Logger } from './logger.js';
import { orAfter } from './timeout.js';

export interface WebSocketOptions {
  app: App;
  server: Server;
  verifyToken: TokenVerifier;
  logger: Logger;
  /** Largest accepted WebSocket message (MAX_BODY_BYTES, the HTTP body limit). */
  maxMessageBytes: number;
  /** Sockets one user may hold open at once (SUBSCRIPTION_CONNECTIONS_PER_USER). */
  maxConnectionsPerUser: number;
}

export interface WebSocketTransport {
  /** Open sockets (all users). */
  readonly size: number;
  /** Closes every socket (1001 Going Away; their subscriptions complete) and stops accepting. */
  close(): Promise<void>;
}

/** Operations running at once on one socket; more are refused (a socket is one client). */
const MAX_OPERATIONS_PER_SOCKET = 32;
const CLOSE_GRACE_MS = 2_000;
/** Closed when a user holds too many sockets (4429, after HTTP 429). */
export const TOO_MANY_CONNECTIONS = 4429;

type Extra = {
  userId?: string;
  authorization?: string;
  operations?: number;
};

/** `Bearer <token>` from connection_init's payload (`authorization` or `Authorization`). */
function authorizationOf(params: Record<string, unknown> | undefined): string | null {
  const value = params?.authorization ?? params?.Authorization;
  return typeof value === 'string' ? value : null;
}

/**
 * GraphQL over WebSocket (the graphql-transport-ws protocol of the `graphql-ws` library) on the
 * HTTP server's own port and the `/graphql` path, for clients that stream over a socket (Apollo
 * iOS/Kotlin, Apollo Client's GraphQLWsLink, urql's subscriptionExchange).
 *
 * Every operation runs through the app's own envelop (yoga's getEnveloped): the same parse and
 * validation (graphql-armor limits), context, error masking, logging and metrics as HTTP, and the
 * domain's per-user rate limits. The token goes in connection_init; it is verified there (a bad
 * or missing one closes the socket with 4403) and again for each operation, so an operation on a
 * socket whose token has since expired is refused like an HTTP request would be.
 */
export function attachWebSocket(o: WebSocketOptions): WebSocketTransport {
  const wss = new WebSocketServer({
    server: o.server,
    path: '/graphql',
    maxPayload: o.maxMessageBytes,
  });
  const perUser = new Map<string, number>();
  const log = o.logger.child({ component: 'websocket' });

  useServer<Record<string, unknown>, Extra>(
    {
      // graphql-ws waits this long for connection_init, then closes (4408): no anonymous idlers.
      connectionInitWaitTimeout: 5_000,
      onConnect: async (ctx) => {
        const authorization = authorizationOf(ctx.connectionParams);
        const [scheme, token] = authorization?.split(' ') ?? [];
        if (scheme?.toLowerCase() !== 'bearer' || !token) return false;
        let userId: string;
        try {
          userId = (await o.verifyToken(token)).id;
        } catch {
          return false;
        }
        const open = perUser.get(userId) ?? 0;
        if (open >= o.maxConnectionsPerUser) {
          ctx.extra.socket.close(TOO_MANY_CONNECTIONS, 'Too many connections for this user');
          return false;
        }
        perUser.set(userId, open + 1);
        ctx.extra.userId = userId;
        ctx.extra.authorization = authorization ?? undefined;
        ctx.extra.operations = 0;
        return true;
      },
      onClose: (ctx) => {
        const { userId } = ctx.extra;
        if (!userId) return;
        ctx.extra.userId = undefined;
        const left = (perUser.get(userId) ?? 1) - 1;
        if (left <= 0) perUser.delete(userId);
        else perUser.set(userId, left);
      },
      onSubscribe: async (ctx, _id, payload) => {
        const running = ctx.extra.operations ?? 0;
        if (running >= MAX_OPERATIONS_PER_SOCKET) {
          ctx.extra.socket.close(CloseCode.BadRequest, 'Too many operations on this socket');
          return;
        }
        // A request as HTTP would carry it: the app's context reads the bearer token from it.
        // POST: every message is a client's deliberate send, like a POST body (yoga refuses
        // mutations on a GET request).
        const request = new Request('http://websocket/graphql', {
          method: 'POST',
          headers: ctx.extra.authorization ? { authorization: ctx.extra.authorization } : {},
        });
        const { schema, execute, subscribe, contextFactory, parse, validate } = o.app.getEnveloped({
          request,
          params: payload,
        });
        const parsed = parseOrErrors(parse, payload.query);
        if ('errors' in parsed) return parsed.errors;
        const { document } = parsed;
        const errors = validateOrErrors(validate, schema, document);
        if (errors.length > 0) return errors;
        const args: ExecutionArgs = {
          schema,
          document,
          operationName: payload.operationName,
          variableValues: payload.variables,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe },
        };
        ctx.extra.operations = running + 1;
        return args;
      },
      onComplete: (ctx) => {
        ctx.extra.operations = Math.max(0, (ctx.extra.operations ?? 1) - 1);
      },
      onError: (ctx) => {
        ctx.extra.operations = Math.max(0, (ctx.extra.operations ?? 1) - 1);
      },
      execute: (args) => {
        const root = args.rootValue as { execute: (a: ExecutionArgs) => unknown };
        return root.execute(args) as never;
      },
      subscribe: (args) => {
        const root = args.rootValue as {
          execute: (a: ExecutionArgs) => unknown;
          subscribe: (a: ExecutionArgs) => unknown;
        };
        // graphql-ws sends queries and mutations here too when the client uses subscribe():
        // only a subscription operation goes to `subscribe`.
        const operation = getOperationAST(args.document, args.operationName);
        return (operation?.operation === 'subscription' ? root.subscribe : root.execute)(
          args,
        ) as never;
      },
    },
    wss,
  );
  wss.on('error', (err) => log.warn({ err }, 'websocket server error'));

  return {
    get size() {
      return wss.clients.size;
    },
    close: async () => {
      const closed = new Promise<void>((resolve) => wss.close(() => resolve()));
      for (const socket of wss.clients) socket.close(1001, 'Server shutting down');
      // A peer that never answers the close handshake is cut after a short grace.
      if ((await orAfter(closed, CLOSE_GRACE_MS, 'late')) === 'late') {
        for (const socket of wss.clients) socket.terminate();
        await orAfter(closed, CLOSE_GRACE_MS, null);
      }
    },
  };
}
