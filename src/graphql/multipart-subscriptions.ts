import type { ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';

const HEARTBEAT_MS = 5_000;

const isAsyncIterable = (value: unknown): value is AsyncIterable<unknown> =>
  typeof (value as AsyncIterable<unknown> | null)?.[Symbol.asyncIterator] === 'function';

/** `Accept: multipart/mixed;…;subscriptionSpec=1.0` (Apollo Client's HttpLink asks so). */
function wantsApolloMultipart(request: Request): boolean {
  const accept = request.headers.get('accept') ?? '';
  return accept
    .toLowerCase()
    .replace(/\s/g, '')
    .split(',')
    .some((type) => type.startsWith('multipart/mixed') && type.includes('subscriptionspec=1.0'));
}

/**
 * Apollo's multipart subscription protocol over HTTP (what Apollo Client's HttpLink, Apollo iOS
 * and Apollo Kotlin speak without a WebSocket): one `multipart/mixed` response whose parts are
 * `{"payload": <result>}`, with `{}` heartbeats, ending with the closing boundary.
 *
 * graphql-yoga serves multipart only for incremental delivery (@defer) and refuses it for
 * subscriptions (406), and its parts are bare results, not Apollo's envelopes, so this small
 * result processor is hand-written. It applies only to subscription streams whose client asked
 * for `subscriptionSpec=1.0`; everything before it (parsing, armor, context, masking) is yoga's.
 */
export function useApolloMultipartSubscriptions(): Plugin {
  return {
    onResultProcess({ request, result, setResultProcessor }) {
      if (!isAsyncIterable(result) || !wantsApolloMultipart(request)) return;
      setResultProcessor((input, fetchAPI) => {
        const encoder = new fetchAPI.TextEncoder();
        const iterator = (input as AsyncIterable<ExecutionResult>)[Symbol.asyncIterator]();
        let heartbeat: NodeJS.Timeout | undefined;
        const part = (json: string) =>
          encoder.encode(
            `\r\n--graphql\r\ncontent-type: application/json; charset=utf-8\r\n\r\n${json}`,
          );
        const stream = new fetchAPI.ReadableStream<Uint8Array>({
          start(controller) {
            heartbeat = setInterval(() => {
              try {
                controller.enqueue(part('{}'));
              } catch {
                clearInterval(heartbeat);
              }
            }, HEARTBEAT_MS);
            heartbeat.unref();
          },
          async pull(controller) {
            try {
              const { done, value } = await iterator.next();
              if (done) {
                clearInterval(heartbeat);
                controller.enqueue(encoder.encode('\r\n--graphql--\r\n'));
                controller.close();
                return;
              }
              controller.enqueue(part(JSON.stringify({ payload: value })));
            } catch (err) {
              clearInterval(heartbeat);
              controller.error(err);
            }
          },
          async cancel() {
            clearInterval(heartbeat);
            await iterator.return?.();
          },
        });
        return new fetchAPI.Response(stream, {
          status: 200,
          headers: {
            'content-type': 'multipart/mixed;boundary="graphql";subscriptionSpec="1.0"',
            'cache-control': 'no-cache',
          },
        });
      }, 'multipart/mixed');
    },
  };
}
