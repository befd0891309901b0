import { PothosValidationError } from '@pothos/core';
import { Prisma } from '@prisma/client';
import { GraphQLError } from 'graphql';
import { AppError } from '../errors.js';

const unexpected = () =>
  new GraphQLError('Unexpected error.', { extensions: { code: 'INTERNAL_SERVER_ERROR' } });

/**
 * The one place errors become what clients see. Expected failures (AppError, GraphQLErrors we
 * raised with a code) keep their message and `extensions.code`; everything else is masked
 * (and logged with the request id by src/graphql/logging.ts).
 */
export function createErrorMasker() {
  return (error: unknown, _message: string): Error => {
    const graphqlError = error instanceof GraphQLError ? error : undefined;
    const original = graphqlError ? graphqlError.originalError : error;
    const at = { nodes: graphqlError?.nodes, path: graphqlError?.path };

    // Parse and validation errors carry no original error: they are the client's. graphql-armor's
    // limit errors come without a code; every error a client sees must have one.
    if (graphqlError && !original) {
      if (graphqlError.extensions?.code) return graphqlError;
      return new GraphQLError(graphqlError.message, {
        ...at,
        extensions: { ...graphqlError.extensions, code: 'GRAPHQL_VALIDATION_FAILED' },
      });
    }
    if (original instanceof AppError) {
      return new GraphQLError(original.message, {
        ...at,
        extensions: { code: original.code, ...original.details },
      });
    }
    if (original instanceof GraphQLError && original.extensions?.code) {
      return new GraphQLError(original.message, { ...at, extensions: original.extensions });
    }
    // Pothos rejects input it validates itself, e.g. a global ID of the wrong type.
    if (original instanceof PothosValidationError) {
      return new GraphQLError('Invalid input: an id of the wrong type.', {
        ...at,
        extensions: { code: 'BAD_USER_INPUT' },
      });
    }
    // A syntactically valid global id whose payload is not a UUID reaches Postgres.
    if (original instanceof Prisma.PrismaClientKnownRequestError && original.code === 'P2023') {
      return new GraphQLError('Malformed id.', { ...at, extensions: { code: 'BAD_USER_INPUT' } });
    }
    const masked = unexpected();
    return at.path
      ? new GraphQLError(masked.message, { ...at, extensions: masked.extensions })
      : masked;
  };
}
