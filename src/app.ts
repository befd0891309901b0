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
import { schema } from './graphql/schema.js';
import { useStorableText } from './graphql/text-guard.js';
import type { Services } from './services.js';

export interface AppOptions {
  services: Services;
  verifyToken: TokenVerifier;
  production: boolean;
  /** Operation limits (GRAPHQL_MAX_*); see graphqlLimitsFrom. */
  limits: GraphQLLimits;
}

export type App = YogaServerInstance<Record<string, unknown>, Context>;

const REQUEST_ID = /^[\w.-]{1,64}$/;

/** The GraphQL HTTP app. It never listens: src/index.ts owns the socket, tests call `fetch`. */
export function createApp(options: AppOptions): App {
  const { services } = options;
  const provision = createUserProvisioner(services.prisma);

  async function authenticate(header: string | null): Promise<Viewer | null> {
    if (!header) return null;
    const [scheme, token] = header.split(' ');
    if (scheme?.toLowerCase() !== 'bearer' || !token) {
      throw new AppError('UNAUTHENTICATED', 'Expected "Authorization: Bearer <token>".');
    }
    const viewer = await options.verifyToken(token);
    await provision(viewer);
    return viewer;
  }

  return createYoga<Record<string, unknown>, Context>({
    schema,
    graphqlEndpoint: '/graphql',
    landingPage: false,
    graphiql: options.production ? false : { title: 'Companion API' },
    // No uploads in this schema: don't parse multipart bodies at all.
    multipart: false,
    maskedErrors: { maskError: createErrorMasker() },
    logging: false,
    plugins: [
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
      const listBudget = new ListBudget(options.limits.maxListItems);
      return { viewer, requestId, services, prisma: services.prisma, listBudget };
    },
  });
}
