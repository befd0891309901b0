import type { Plugin } from 'graphql-yoga';
import { AppError } from '../errors.js';
import type { Context } from './context.js';

/**
 * One structured log line per GraphQL operation (request id, user id, operation, duration,
 * error codes) and the full stack of every unexpected error, with the request id so a masked
 * "Unexpected error." can be found. Never message content or variables.
 */
export function useOperationLogging(): Plugin<Context> {
  return {
    onExecute({ args }) {
      const ctx = args.contextValue;
      const started = performance.now();
      return {
        onExecuteDone({ result }) {
          if (!('errors' in result)) return;
          const errors = result.errors ?? [];
          const log = ctx.services.logger.child({
            requestId: ctx.requestId,
            userId: ctx.viewer?.id,
          });
          for (const e of errors) {
            const original = e.originalError;
            const expected =
              original instanceof AppError ||
              (original as { extensions?: { code?: unknown } })?.extensions?.code;
            if (original && !expected)
              log.error({ err: original, path: e.path }, 'unexpected error');
          }
          log.info(
            {
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
