import { randomUUID } from 'node:crypto';
import { usePrometheus } from '@graphql-yoga/plugin-prometheus';
import { createYoga, type YogaServerInstance } from 'graphql-yoga';
import type { TokenVerifier, Viewer } from './auth/tokens.js';
import { createUserProvisioner } from './auth/users.js';
import { AppError } from './errors.js';
import { type GraphQLLimits, useGraphQLLimits } from './graphql/armor.js';
import type { Context } from './graphql/context.js';
import { createErrorMasker } from './graphql/errors.js';
import { ListBudget } from './graphql/list-budget.js';
import { useOperationLogging } from './graphql/logging.js';
import { useApolloMultipartSubscriptions } from './graphql/multipart-subscriptions.js';
import { schema } from './graphql/schema.js';
import { useSingleConnectionSse } from './graphql/sse.js';
import { useStorableText } from './graphql/text-guard.js';
import { useTransportRules } from './graphql/transport.js';
import type { Services } from './services.js';

export interface AppOptions {
  services: Services;
  verifyToken: TokenVerifier;
  production: boolean;
  /** Operation limits (GRAPHQL_MAX_*); see graphqlLimitsFrom. */
  limits: GraphQLLimits;
  /** GRAPHQL_INTROSPECTION; default: on except in production. */
  introspection?: boolean;
  /** CORS_ORIGINS: browser origins allowed; empty: any outside production, none in production. */
  corsOrigins?: readonly string[];
  /** Zero-config development only: pre-filled in GraphiQL's headers. */
  devToken?: string;
  /** graphql-sse single-connection streams per user (SUBSCRIPTION_CONNECTIONS_PER_USER). */
  maxStreamsPerUser?: number;
  /**
   * True when every request reaches the app through src/http.ts, which reads the body whole
   * under MAX_BODY_BYTES first (src/index.ts). Yoga's own body limit (25 MB by default) then
   * only costs a TransformStream and a second Request per POST, so it is turned off.
   */
  bodyLimitedUpstream?: boolean;
}

export type App = YogaServerInstance<Record<string, unknown>, Context>;

const REQUEST_ID = /^[\w.-]{1,64}$/;

/**
 * Bearer tokens are not cookies, so CORS only decides which web apps may read answers. Listed
 * origins are reflected (with credentials); with no list, development reflects any origin (as
 * yoga does) and production sends no CORS headers, so browsers refuse every cross-origin read.
 */
function corsPolicy(origins: readonly string[], production: boolean) {
  if (origins.length > 0) {
    const allowed = new Set(origins);
    return (request: Request) => {
      const origin = request.headers.get('origin');
      return origin && allowed.has(origin)
        ? { origin, credentials: true, methods: ['GET', 'POST', 'PUT', 'DELETE'] }
        : false;
    };
  }
  return production ? false : undefined;
}

/** The GraphQL HTTP app. It never listens: src/index.ts owns the socket, tests call `fetch`. */
export function createApp(options: AppOptions): App {
  const { services } = options;
  const provision = createUserProvisioner(services.prisma, services.sql);

  async function authenticate(header: string | null): Promise<Viewer | null> {
    if (!header) return null;
    const [scheme, token] = header.split(' ');
    if (scheme?.toLowerCase() !== 'bearer' || !token) {
      throw new AppError('UNAUTHENTICATED', 'Expected "Authorization: Bearer <token>".');
    }
    const viewer = await options.verifyToken(token);
    // A service caller is no user: nothing to provision.
    if (!viewer.service) await provision(viewer);
    return viewer;
  }

  return createYoga<Record<string, unknown>, Context>({
    schema,
    graphqlEndpoint: '/graphql',
    landingPage: false,
    cors: corsPolicy(options.corsOrigins ?? [], options.production),
    // Rendered from npm (@graphql-yoga/render-graphiql, scripts inlined), not from a CDN, so the
    // page works offline. The dev token exists only in zero-config development, never in
    // production (where GraphiQL is off anyway).
    graphiql: options.production
      ? false
      : {
          title: 'Companion API',
          subscriptionsProtocol: 'WS',
          ...(options.devToken
            ? { headers: JSON.stringify({ Authorization: `Bearer ${options.devToken}` }) }
            : {}),
        },
    // Imported on first use: the page bundles ~9 MB of scripts, which production (no GraphiQL)
    // never loads and a development boot need not parse.
    renderGraphiQL: async (graphiql) =>
      (await import('@graphql-yoga/render-graphiql')).renderGraphiQL(graphiql),
    // No uploads in this schema: don't parse multipart bodies at all.
    multipart: false,
    ...(options.bodyLimitedUpstream ? { maxRequestBodySize: false as const } : {}),
    maskedErrors: { maskError: createErrorMasker() },
    logging: false,
    plugins: [
      useTransportRules({
        introspection: options.introspection ?? !options.production,
        maxTokens: options.limits.maxTokens,
      }),
      useSingleConnectionSse({
        verifyToken: options.verifyToken,
        maxStreamsPerUser: options.maxStreamsPerUser ?? 8,
      }),
      useApolloMultipartSubscriptions(),
      useGraphQLLimits(options.limits, options.production),
      useStorableText(),
      useOperationLogging(),
      usePrometheus({
        registry: services.metrics.registry,
        // Served by src/http.ts (with its optional token), not by yoga.
        endpoint: false,
        // The plugin enables most metrics by default: each one is chosen here.
        metrics: {
          graphql_yoga_http_duration: true,
          graphql_envelop_request: true,
          graphql_envelop_request_duration: true,
          graphql_envelop_error_result: true,
          graphql_envelop_phase_parse: true,
          graphql_envelop_phase_validate: true,
          graphql_envelop_phase_execute: true,
          graphql_envelop_phase_subscribe: true,
          graphql_envelop_phase_context: false,
          graphql_envelop_request_time_summary: false,
          graphql_envelop_deprecated_field: false,
          graphql_envelop_schema_change: false,
          graphql_envelop_execute_resolver: false,
        },
        // URLs, operation names and error paths are chosen by clients: as labels they would grow
        // the registry without bound. companion_graphql_operation_duration_seconds has bounded
        // ones (type and root field).
        labels: { url: false, operationName: false, path: false },
      }),
    ],
    context: async ({ request }) => {
      const incoming = request.headers.get('x-request-id');
      const requestId = incoming && REQUEST_ID.test(incoming) ? incoming : randomUUID();
      const viewer = await authenticate(request.headers.get('authorization'));
      if (viewer?.service) {
        // Every server-to-server call leaves a line with its key id (never the key).
        services.logger.info({ requestId, serviceKeyId: viewer.service }, 'service call');
      }
      const listBudget = new ListBudget(options.limits.maxListItems);
      return { viewer, requestId, services, prisma: services.prisma, listBudget };
    },
  });
}
