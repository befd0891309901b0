import { orAfter } from '../timeout.js';

/**
 * Turns running in this process, by user and clientMessageId. A second request for a turn
 * that is still running (a client that disconnected from a stream and re-sent, or retried
 * impatiently) waits for it and then replays its result, instead of asking the model a second
 * time. Across machines the database's unique reply still keeps one answer per message.
 * Holds an entry only while its turn runs.
 */
export class RunningTurns {
  readonly #running = new Map<string, Promise<unknown>>();

  async exclusive<T>(key: string, run: () => Promise<T>): Promise<T> {
    for (let running = this.#running.get(key); running; running = this.#running.get(key)) {
      await running.catch(() => {});
    }
    const turn = run();
    this.#running.set(key, turn);
    try {
      return await turn;
    } finally {
      if (this.#running.get(key) === turn) this.#running.delete(key);
    }
  }

  /**
   * Waits until no turn with this key runs. False if one still runs after `timeoutMs`: the
   * caller answers "retry" instead of holding its request open for ever.
   */
  async settled(key: string, timeoutMs: number): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    for (let running = this.#running.get(key); running; running = this.#running.get(key)) {
      const left = until - Date.now();
      if (left <= 0) return false;
      await orAfter(
        running.catch(() => {}),
        left,
        undefined,
      );
    }
    return true;
  }

  has(key: string): boolean {
    return this.#running.has(key);
  }

  get size(): number {
    return this.#running.size;
  }
}
