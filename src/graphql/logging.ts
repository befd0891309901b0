import { GraphQLError, getOperationAST, Kind } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { AppError } from '../errors.js';
import type { Context } from './context.js';
import { createErrorMasker } from './errors.js';

/**
 * One structured log line per GraphQL operation (request id, user id, operation, duration,
 * error codes) and the full stack of every unexpected error, with the request id so a masked
 * "Unexpected error." can be found. Never message content or variables.
 */
const maskError = createErrorMasker();

export function useOperationLogging(): Plugin<Context> {
  return {
    onExecute({ args }) {
      const ctx = args.contextValue;
      const started = performance.now();
      // Labels from the validated document only: client-chosen operation names would let any
      // client create unbounded metric series.
      const operation = getOperationAST(args.document, args.operationName);
      const first = operation?.selectionSet.selections[0];
      const labels = {
        type: operation?.operation ?? 'unknown',
        field: first?.kind === Kind.FIELD ? first.name.value : 'other',
      };
      return {
        onExecuteDone({ result }) {
          // A subscription's result is its event stream: its turn logs for itself.
          if (Symbol.asyncIterator in result) return;
          const errors = result.errors ?? [];
          const outcome = errors.length ? 'error' : 'ok';
          ctx.services.metrics.operationDuration.observe(
            { ...labels, outcome },
            (performance.now() - started) / 1000,
          );
          const who = {
            requestId: ctx.requestId,
            ...(ctx.viewer?.service
              ? { serviceKeyId: ctx.viewer.service }
              : { userId: ctx.viewer?.id }),
          };
          // A child logger only when there is more than the one line: building one per request
          // was a visible part of a chat turn's CPU.
          const log = errors.length ? ctx.services.logger.child(who) : ctx.services.logger;
          for (const e of errors) {
            const original = e.originalError;
            // GraphQLErrors are the client's (e.g. variables that do not coerce), not ours.
            if (!original || original instanceof AppError || original instanceof GraphQLError) {
              continue;
            }
            // Classified by the masker, the one place that knows: only what it hides as
            // INTERNAL_SERVER_ERROR is ours and worth a stack. An expected miss (a row that is
            // not there, a malformed id reaching Postgres) is the client's; anyone could flood
            // the error log with it.
            const masked = maskError(e, e.message);
            const code = masked instanceof GraphQLError ? masked.extensions?.code : undefined;
            if (code === 'INTERNAL_SERVER_ERROR') {
              log.error({ err: original, path: e.path }, 'unexpected error');
            } else if (code === 'SERVICE_UNAVAILABLE') {
              log.warn({ err: original.message, path: e.path }, 'database unavailable');
            } else {
              log.debug({ code, path: e.path }, 'client error');
            }
          }
          log.info(
            {
              ...(errors.length ? {} : who),
              operation: args.operationName ?? undefined,
              ms: Math.round(performance.now() - started),
              errors: errors.length ? errors.map((e) => e.extensions?.code ?? 'ERROR') : undefined,
            },
            'graphql operation',
          );
        },
      };
    },
  };
}
