import { GraphQLError } from 'graphql';

/**
 * Parse and validation errors of an operation that arrived over a socket or a reserved SSE
 * stream carry the codes yoga gives them on HTTP (GRAPHQL_PARSE_FAILED,
 * GRAPHQL_VALIDATION_FAILED; its HTTP-only plugins set them there), so a client handles a
 * refused operation the same way on every transport.
 */
export function withCode(
  errors: readonly GraphQLError[],
  code: 'GRAPHQL_PARSE_FAILED' | 'GRAPHQL_VALIDATION_FAILED',
): GraphQLError[] {
  return errors.map(
    (e) =>
      new GraphQLError(e.message, {
        nodes: e.nodes,
        source: e.source,
        positions: e.positions,
        extensions: { ...e.extensions, http: undefined, code: e.extensions?.code ?? code },
      }),
  );
}

/** parse() for an operation: a syntax or token-limit error becomes GRAPHQL_PARSE_FAILED. */
export function parseOrErrors<T>(
  parse: (query: string) => T,
  query: string,
): { document: T } | { errors: GraphQLError[] } {
  try {
    return { document: parse(query) };
  } catch (err) {
    const error = err instanceof GraphQLError ? err : new GraphQLError('Syntax Error');
    return { errors: withCode([error], 'GRAPHQL_PARSE_FAILED') };
  }
}

/**
 * validate() for an operation: its errors get GRAPHQL_VALIDATION_FAILED. graphql-armor's rules
 * throw their first rejection instead of returning it; that counts as a validation error too.
 */
export function validateOrErrors<S, D>(
  validate: (schema: S, document: D) => readonly GraphQLError[],
  schema: S,
  document: D,
): GraphQLError[] {
  try {
    return withCode(validate(schema, document), 'GRAPHQL_VALIDATION_FAILED');
  } catch (err) {
    if (!(err instanceof GraphQLError)) throw err;
    return withCode([err], 'GRAPHQL_VALIDATION_FAILED');
  }
}
