import { LRUCache } from 'lru-cache';
import { AppError } from './errors.js';
import { orAfter } from './timeout.js';

export interface UserLimitsConfig {
  /** Memory searches and edits (each embeds text: a paid call with Voyage) per user per minute. */
  embedsPerMinute: number;
  /** Chat turns (sendMessage and streamed replies) a user may start per minute. */
  turnsPerMinute: number;
  /** startChat calls a user may make per minute. */
  startsPerMinute: number;
  /** Turns of one user running at the same time. */
  maxConcurrentTurns: number;
  /** Users whose rate state is kept; the least recently seen are forgotten first. */
  trackedUsers: number;
  /** Told about every refusal (metrics). */
  onLimited?: (limit: 'turns' | 'concurrent_turns' | 'starts' | 'memory_embeds') => void;
}

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * A token bucket per key: `perMinute` tokens of burst, refilled evenly over a minute. State
 * lives in a bounded LRU, so memory stays flat however many users arrive; a forgotten user
 * only gets a fresh (full) bucket. Per process: with N machines a user gets at most N× the
 * limit, which is acceptable for abuse protection (the memory-write limit in the worker is
 * the one enforced in the database).
 */
export class RateLimiter {
  readonly #buckets: LRUCache<string, Bucket>;
  readonly #capacity: number;
  readonly #perMs: number;

  constructor(perMinute: number, maxKeys: number) {
    this.#capacity = perMinute;
    this.#perMs = perMinute / 60_000;
    this.#buckets = new LRUCache({ max: maxKeys });
  }

  /** Takes one token; returns 0 when allowed, else the milliseconds until one is available. */
  take(key: string, now = Date.now()): number {
    const bucket = this.#buckets.get(key) ?? { tokens: this.#capacity, at: now };
    const tokens = Math.min(this.#capacity, bucket.tokens + (now - bucket.at) * this.#perMs);
    if (tokens >= 1) {
      this.#buckets.set(key, { tokens: tokens - 1, at: now });
      return 0;
    }
    this.#buckets.set(key, { tokens, at: now });
    return Math.ceil((1 - tokens) / this.#perMs);
  }

  get size(): number {
    return this.#buckets.size;
  }
}

/** Counts in-flight work per key; an entry exists only while its key has work running. */
export class ConcurrencyGate {
  readonly #running = new Map<string, number>();
  #total = 0;
  #idle: (() => void)[] = [];

  constructor(readonly max: number) {}

  /** A release function, or null when the key is at its cap. Release is idempotent. */
  tryAcquire(key: string): (() => void) | null {
    const n = this.#running.get(key) ?? 0;
    if (n >= this.max) return null;
    this.#running.set(key, n + 1);
    this.#total++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#running.get(key) ?? 1) - 1;
      if (left <= 0) this.#running.delete(key);
      else this.#running.set(key, left);
      if (--this.#total === 0) for (const wake of this.#idle.splice(0)) wake();
    };
  }

  /** Resolves true once nothing runs, or false after `timeoutMs`. */
  async whenIdle(timeoutMs: number): Promise<boolean> {
    if (this.#total === 0) return true;
    const idle = new Promise<boolean>((resolve) => this.#idle.push(() => resolve(true)));
    return orAfter(idle, timeoutMs, false);
  }

  get size(): number {
    return this.#running.size;
  }
}

function rateLimited(message: string, retryAfterMs: number): AppError {
  const retryAfterSeconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
  return new AppError('RATE_LIMITED', `${message} Retry in ${retryAfterSeconds} s.`, {
    retryAfterSeconds,
    retryable: true,
  });
}

/**
 * Per-user limits of the entry points that cost real work or money (DESIGN.md "Auth and
 * limits"): chat turns, new chats, memory searches. Memory writes are limited in the worker.
 */
export class UserLimits {
  readonly #turns: RateLimiter;
  readonly #starts: RateLimiter;
  readonly #embeds: RateLimiter;
  readonly #inFlight: ConcurrencyGate;
  readonly #onLimited: NonNullable<UserLimitsConfig['onLimited']>;

  constructor(config: UserLimitsConfig) {
    this.#onLimited = config.onLimited ?? (() => {});
    this.#turns = new RateLimiter(config.turnsPerMinute, config.trackedUsers);
    this.#starts = new RateLimiter(config.startsPerMinute, config.trackedUsers);
    this.#embeds = new RateLimiter(config.embedsPerMinute, config.trackedUsers);
    this.#inFlight = new ConcurrencyGate(config.maxConcurrentTurns);
  }

  /**
   * Admits one turn or throws RATE_LIMITED. The caller must call the returned release when the
   * turn has ended (persisted or failed), not when its client went away.
   */
  admitTurn(userId: string): () => void {
    const release = this.acquireTurnSlot(userId);
    try {
      this.chargeTurn(userId);
    } catch (err) {
      release();
      throw err;
    }
    return release;
  }

  /** The per-minute part of admitTurn alone (a re-send waiting for its running turn). */
  chargeTurn(userId: string): void {
    const wait = this.#turns.take(userId);
    if (wait > 0) {
      this.#onLimited('turns');
      throw rateLimited('Too many messages.', wait);
    }
  }

  /** The concurrency part of admitTurn alone; release when the turn has ended. */
  acquireTurnSlot(userId: string): () => void {
    const release = this.#inFlight.tryAcquire(userId);
    if (!release) {
      this.#onLimited('concurrent_turns');
      throw rateLimited(
        `At most ${this.#inFlight.max} messages of one user are answered at a time.`,
        1000,
      );
    }
    return release;
  }

  admitStart(userId: string): void {
    const wait = this.#starts.take(userId);
    if (wait > 0) {
      this.#onLimited('starts');
      throw rateLimited('Too many new chats.', wait);
    }
  }

  admitEmbed(userId: string): void {
    const wait = this.#embeds.take(userId);
    if (wait > 0) {
      this.#onLimited('memory_embeds');
      throw rateLimited('Too many memory searches or edits.', wait);
    }
  }

  /**
   * Waits for every admitted turn to end, including streamed turns whose client went away
   * (no HTTP request keeps those alive, so closing the server does not wait for them).
   */
  whenIdle(timeoutMs: number): Promise<boolean> {
    return this.#inFlight.whenIdle(timeoutMs);
  }

  /** How much state the limits hold (exported as gauges on /metrics). */
  stats(): { trackedUsers: number; usersWithTurnsInFlight: number } {
    return {
      trackedUsers: Math.max(this.#turns.size, this.#starts.size, this.#embeds.size),
      usersWithTurnsInFlight: this.#inFlight.size,
    };
  }
}
