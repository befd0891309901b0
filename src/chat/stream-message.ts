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
export function streamMessage(s: Services, input: SendMessageInput): AsyncGenerator<TurnEvent> {
  let pending = '';
  let streamed = false;
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
        if (!(error instanceof AppError)) {
          s.logger.error({ err: error, userId: input.userId }, 'streamed turn failed');
        } else if (detached) {
          s.logger.warn({ err: error }, 'streamed turn failed after its client left');
        }
        notify();
      },
    );

  async function* events(): AsyncGenerator<TurnEvent> {
    // Started on the first read, not at subscribe: yoga may still refuse the request (e.g. no
    // `Accept: text/event-stream`) without ever reading, and then no turn must have run.
    void start();
    try {
      for (;;) {
        if (pending) {
          const text = pending;
          pending = '';
          streamed = true;
          yield { kind: 'delta', text };
          continue;
        }
        if (outcome) {
          if ('error' in outcome) throw outcome.error;
          // A replayed turn produced no deltas: send its text as one, so deltas always add up.
          if (!streamed) yield { kind: 'delta', text: outcome.turn.reply.content };
          yield { kind: 'done', turn: outcome.turn };
          return;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    } finally {
      detached = true;
      pending = '';
    }
  }
  return events();
}
