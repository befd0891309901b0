import { getOperationAST, NoSchemaIntrospectionCustomRule, parse } from 'graphql';
import { createGraphQLError, type Plugin } from 'graphql-yoga';

export interface TransportRules {
  /** GRAPHQL_INTROSPECTION: answer `__schema` / `__type` queries. */
  introspection: boolean;
  /** Token limit of a document (GRAPHQL_MAX_TOKENS), also for the early parse of a GET. */
  maxTokens: number;
}

/**
 * The HTTP rules of GraphQL-over-HTTP requests, in one place (other transports, e.g. a
 * WebSocket or graphql-sse's single-connection mode, bring their own and never reach these
 * hooks' GET branch):
 *
 * - A POST body is `application/json` and nothing else (415): yoga would also execute
 *   `application/x-www-form-urlencoded` and `application/graphql` bodies, which a browser can
 *   send cross-site without a CORS preflight.
 * - GET runs queries only. Yoga refuses mutations on GET itself but runs subscriptions, and
 *   `sendMessageStream` writes a turn: over GET that is a write anyone can trigger with a link,
 *   and the message text would travel in the URL (proxy and access logs). So every operation
 *   but a query is refused on GET with 405 before anything runs; subscriptions are POST only.
 * - Introspection is a validation rule away (graphql-js's NoSchemaIntrospectionCustomRule).
 */
export function useTransportRules(rules: TransportRules): Plugin {
  return {
    onRequestParse({ request, endResponse, fetchAPI }) {
      if (request.method !== 'POST') return;
      const mediaType = request.headers.get('content-type')?.split(';')[0]?.trim().toLowerCase();
      if (mediaType === 'application/json') return;
      const message = 'Only application/json request bodies are accepted.';
      endResponse(
        new fetchAPI.Response(
          JSON.stringify({ errors: [{ message, extensions: { code: 'UNSUPPORTED_MEDIA_TYPE' } }] }),
          {
            status: 415,
            headers: { 'content-type': 'application/json', 'accept-post': 'application/json' },
          },
        ),
      );
    },
    onParams({ request, params }) {
      if (request.method !== 'GET' || typeof params.query !== 'string') return;
      let type: string | undefined;
      try {
        const document = parse(params.query, { maxTokens: rules.maxTokens });
        type = getOperationAST(document, params.operationName)?.operation;
      } catch {
        return; // yoga reports the parse error itself, and nothing runs
      }
      if (type === undefined || type === 'query') return;
      throw createGraphQLError(`Only queries run over GET; send a ${type} with POST.`, {
        extensions: {
          // The code yoga gives a mutation over GET, so both refusals read the same.
          code: 'BAD_REQUEST',
          http: { status: 405, headers: { Allow: 'POST' } },
        },
      });
    },
    onValidate({ addValidationRule }) {
      if (!rules.introspection) addValidationRule(NoSchemaIntrospectionCustomRule);
    },
  };
}
