import { AppError } from '../errors.js';
import type { Services } from '../services.js';
import { type SendMessageInput, sendMessage, type Turn } from './send-message.js';

export type TurnEvent = { kind: 'delta'; text: string } | { kind: 'done'; turn: Turn };

/**
 * One chat turn as a stream of events: reply text as the model produces it, then the persisted
 * turn. It is `sendMessage` underneath (same validation, idempotency and limits). The final
 * event's reply is authoritative: deltas add up to it, except when another request raced this
 * one for the same clientMessageId on another machine and won.
 *
 * The turn runs detached from its consumer: a client that disconnects only stops receiving
 * events; the reply is still persisted and its extraction job enqueued, and a retry with the
 * same clientMessageId returns it. Deltas a slow consumer has not taken yet are merged into one,
 * so the buffer never holds more than the reply itself.
 */
export function streamMessage(
  s: Services,
  input: SendMessageInput,
  options: { requestId?: string } = {},
): AsyncIterableIterator<TurnEvent> {
  const log = s.logger.child({ requestId: options.requestId, userId: input.userId });
  let pending = '';
  let streamed = false;
  let started = false;
  let finished = false;
  let outcome: { turn: Turn } | { error: unknown } | null = null;
  let detached = false;
  let wake: (() => void) | null = null;
  const notify = () => {
    wake?.();
    wake = null;
  };

  const start = () =>
    sendMessage(s, input, {
      onDelta: (text) => {
        if (detached) return;
        pending += text;
        notify();
      },
    }).then(
      (turn) => {
        outcome = { turn };
        notify();
      },
      (error: unknown) => {
        outcome = { error };
        // Subscriptions bypass the per-operation log, so failures are logged here: unexpected
        // ones always, expected ones (AppError) when nobody is left to receive them.
        if (!(error instanceof AppError)) log.error({ err: error }, 'streamed turn failed');
        else if (detached) log.warn({ err: error }, 'streamed turn failed after its client left');
        notify();
      },
    );

  const done = (): IteratorResult<TurnEvent> => ({ done: true, value: undefined });

  /** The next event; waits while the model has produced nothing new. */
  async function next(): Promise<IteratorResult<TurnEvent>> {
    // Started on the first read, not at subscribe: yoga may still refuse the request (e.g. no
    // `Accept: text/event-stream`) without ever reading, and then no turn must have run.
    if (!started) {
      started = true;
      void start();
    }
    for (;;) {
      if (detached || finished) return done();
      if (pending) {
        const text = pending;
        pending = '';
        streamed = true;
        return { done: false, value: { kind: 'delta', text } };
      }
      if (outcome) {
        if ('error' in outcome) {
          finished = true;
          throw outcome.error;
        }
        // A replayed turn produced no deltas: send its text as one, so deltas always add up.
        if (!streamed) {
          streamed = true;
          return { done: false, value: { kind: 'delta', text: outcome.turn.reply.content } };
        }
        finished = true;
        return { done: false, value: { kind: 'done', turn: outcome.turn } };
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  }

  /** The client went away (or yoga closed the stream): stop buffering, the turn goes on. */
  async function stop(): Promise<IteratorResult<TurnEvent>> {
    detached = true;
    pending = '';
    notify();
    return done();
  }

  return {
    next,
    return: stop,
    throw: async (err) => {
      await stop();
      throw err;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
