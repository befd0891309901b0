/**
 * The one source of "now" in the domain. Services carry a Clock, and the turn, the extraction
 * job and the follow-up checks all read it, so tests and bench/companion-eval.ts move time by
 * swapping the clock instead of sleeping.
 */
export type Clock = () => Date;

export const systemClock: Clock = () => new Date();

/**
 * A clock the caller sets and advances (tests, the companion evaluation). Each reading moves it
 * on by `tickMs` (1 ms): rows written one after another (a message, then its reply) keep their
 * order, as they do on a real clock.
 */
export class ManualClock {
  #now: number;
  readonly #tickMs: number;
  constructor(start: Date, tickMs = 1) {
    this.#now = start.getTime();
    this.#tickMs = tickMs;
  }
  readonly now: Clock = () => {
    const at = new Date(this.#now);
    this.#now += this.#tickMs;
    return at;
  };
  set(to: Date): void {
    this.#now = to.getTime();
  }
  advance(ms: number): void {
    this.#now += ms;
  }
}
