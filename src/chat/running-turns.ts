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

  get size(): number {
    return this.#running.size;
  }
}
