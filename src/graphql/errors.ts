import { PothosValidationError } from '@pothos/core';
import { Prisma } from '@prisma/client';
import { GraphQLError } from 'graphql';
import { isDatabaseUnavailable } from '../db/unavailable.js';
import { AppError } from '../errors.js';

const unexpected = () =>
  new GraphQLError('Unexpected error.', { extensions: { code: 'INTERNAL_SERVER_ERROR' } });

/**
 * Postgres data exceptions that only a client's value causes: text Postgres cannot store (NUL),
 * a malformed UUID, a date outside its range. Inputs are validated before they reach SQL; this
 * is the net under that, so a value that slips through is the client's error, not a 500.
 */
const DATA_EXCEPTIONS: Record<string, string> = {
  '22021': 'Text contains a character that cannot be stored (NUL).',
  '22P05': 'Text contains a character that cannot be stored (NUL).',
  '22P02': 'Malformed value.',
  '22007': 'Invalid date.',
  '22008': 'Date out of range.',
  '22009': 'Date out of range.',
};

/** The SQLSTATE of a driver error, as thrown by a model query or wrapped by a raw one (P2010). */
function sqlState(error: unknown): string | undefined {
  const adapterError =
    error instanceof Prisma.PrismaClientKnownRequestError ? error.meta?.driverAdapterError : error;
  const { name, cause } = (adapterError ?? {}) as {
    name?: unknown;
    cause?: { kind?: unknown; code?: unknown };
  };
  if (name !== 'DriverAdapterError' || cause?.kind !== 'postgres') return undefined;
  return typeof cause.code === 'string' ? cause.code : undefined;
}

/**
 * Pothos rejects arguments it validates itself (global IDs, cursors, page sizes). Its messages
 * echo the input (a 10 kB id comes back whole), so clients get a fixed message per kind.
 */
function pothosMessage(error: PothosValidationError): string {
  if (/cursor/i.test(error.message)) return 'Invalid cursor.';
  if (/global ID|is not of type|Invalid id/i.test(error.message)) {
    return 'Invalid input: an id of the wrong type.';
  }
  // Connection argument rules ('Argument "first" must be a non-negative integer', …) name no input.
  if (/^Arguments? "\w+"/.test(error.message)) return error.message;
  return 'Invalid input.';
}

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
    const clientError = (message: string, code: string) =>
      new GraphQLError(message, { ...at, extensions: { code } });

    // Parse and validation errors carry no original error: they are the client's. graphql-armor's
    // limit errors come without a code; every error a client sees must have one.
    // yoga's request parser quotes the client's body in `extensions.originalError` (invalid
    // JSON): echoing input back is what masking is for, so that key never leaves. Yoga reads
    // that key's presence as "answer with the error's status even to application/json", so
    // the status is kept explicitly (`spec: false`): invalid JSON stays a 400.
    if (graphqlError && !original) {
      const { originalError: quoted, ...extensions } = graphqlError.extensions ?? {};
      if (!quoted && extensions.code) return graphqlError;
      const http = extensions.http as { spec?: boolean } | undefined;
      return new GraphQLError(graphqlError.message, {
        ...at,
        extensions: {
          ...extensions,
          ...(quoted && http ? { http: { ...http, spec: false } } : {}),
          code: extensions.code ?? 'GRAPHQL_VALIDATION_FAILED',
        },
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
    // A variable that does not coerce to its type ('Int cannot represent …', an unknown enum
    // value): graphql-js wraps the scalar's error before execution starts, so without a path.
    if (original instanceof GraphQLError && !graphqlError?.path) {
      return new GraphQLError(graphqlError?.message ?? original.message, {
        ...at,
        extensions: { code: 'BAD_USER_INPUT' },
      });
    }
    if (original instanceof PothosValidationError) {
      return clientError(pothosMessage(original), 'BAD_USER_INPUT');
    }
    if (original instanceof Prisma.PrismaClientKnownRequestError) {
      // A syntactically valid global id whose payload is not a UUID reaches Postgres.
      if (original.code === 'P2023') return clientError('Malformed id.', 'BAD_USER_INPUT');
      // A record a query required is not there (e.g. node(id) of a deleted row).
      if (original.code === 'P2025') return clientError('Not found.', 'NOT_FOUND');
    }
    const state = sqlState(original);
    const dataException = state ? DATA_EXCEPTIONS[state] : undefined;
    if (dataException) return clientError(dataException, 'BAD_USER_INPUT');

    // The database is restarting, failing over or out of connections: nothing is wrong with the
    // request, and retrying it is safe (sendMessage: with the same clientMessageId).
    if (isDatabaseUnavailable(original)) {
      return new GraphQLError('The service is briefly unavailable. Retry the request.', {
        ...at,
        extensions: { code: 'SERVICE_UNAVAILABLE', retryable: true },
      });
    }
    const masked = unexpected();
    return at.path
      ? new GraphQLError(masked.message, { ...at, extensions: masked.extensions })
      : masked;
  };
}
