/**
 * The one source of "now" in the domain. Services carry a Clock, and the turn, the extraction
 * job and the follow-up checks all read it, so tests and bench/companion-eval.ts move time by
 * swapping the clock instead of sleeping.
 */
export type Clock = () => Date;

export const systemClock: Clock = () => new Date();

/** A clock the caller sets and advances (tests, the companion evaluation). */
export class ManualClock {
  #now: number;
  constructor(start: Date) {
    this.#now = start.getTime();
  }
  readonly now: Clock = () => new Date(this.#now);
  set(to: Date): void {
    this.#now = to.getTime();
  }
  advance(ms: number): void {
    this.#now += ms;
  }
}
