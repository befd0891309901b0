import { LRUCache } from 'lru-cache';
import { AppError } from './errors.js';
import type { LimitKind, RateStore } from './limits-store.js';
import { orAfter } from './timeout.js';

export interface UserLimitsConfig {
  /** Memory searches and edits (each embeds text: a paid call with Voyage) per user per minute. */
  embedsPerMinute: number;
  /** Chat turns (sendMessage and streamed replies) a user may start per minute. */
  turnsPerMinute: number;
  /** startChat calls a user may make per minute. */
  startsPerMinute: number;
  /** Turns of one user running at the same time, in this process. */
  maxConcurrentTurns: number;
  /**
   * Where the per-minute buckets live: the server passes a PostgresRateStore (shared by every
   * process). Without one, an in-memory store for `trackedUsers` users (tests of the primitives).
   */
  store?: RateStore;
  trackedUsers?: number;
  /** Told about every refusal (metrics). */
  onLimited?: (limit: 'turns' | 'concurrent_turns' | 'starts' | 'memory_embeds') => void;
}

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * A token bucket per key in memory: `perMinute` tokens of burst, refilled evenly over a minute,
 * in a bounded LRU (a forgotten key gets a full bucket). Per process, so the server keeps its
 * buckets in Postgres instead (PostgresRateStore); this one serves MemoryRateStore.
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

/** RateLimiters in memory, one per limit: per process only. */
export class MemoryRateStore implements RateStore {
  readonly #limiters = new Map<string, RateLimiter>();
  constructor(private readonly maxKeys: number) {}

  async take(userId: string, kind: LimitKind, perMinute: number): Promise<number> {
    const key = `${kind}:${perMinute}`;
    let limiter = this.#limiters.get(key);
    if (!limiter) {
      limiter = new RateLimiter(perMinute, this.maxKeys);
      this.#limiters.set(key, limiter);
    }
    return limiter.take(userId);
  }

  get size(): number {
    return Math.max(0, ...[...this.#limiters.values()].map((l) => l.size));
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

  /** Work in flight over every key. */
  get total(): number {
    return this.#total;
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
 * limits"): chat turns, new chats, memory searches. The per-minute limits are token buckets
 * in Postgres, so they hold across every process on the database, at one statement per check.
 * The concurrent-turn cap stays per process: it guards this process's CPU and memory (a
 * machine's resource, not a user's quota), and a database slot would cost a second statement
 * per turn to release and a lease to survive a crash. Memory writes are limited in the worker.
 */
export class UserLimits {
  readonly #store: RateStore;
  readonly #perMinute: Record<LimitKind, number>;
  readonly #inFlight: ConcurrencyGate;
  readonly #onLimited: NonNullable<UserLimitsConfig['onLimited']>;

  constructor(config: UserLimitsConfig) {
    this.#onLimited = config.onLimited ?? (() => {});
    this.#store = config.store ?? new MemoryRateStore(config.trackedUsers ?? 10_000);
    this.#perMinute = {
      turns: config.turnsPerMinute,
      starts: config.startsPerMinute,
      embeds: config.embedsPerMinute,
    };
    this.#inFlight = new ConcurrencyGate(config.maxConcurrentTurns);
  }

  /**
   * Admits one turn or throws RATE_LIMITED. The caller must call the returned release when the
   * turn has ended (persisted or failed), not when its client went away.
   */
  async admitTurn(userId: string): Promise<() => void> {
    const release = this.acquireTurnSlot(userId);
    try {
      await this.chargeTurn(userId);
    } catch (err) {
      release();
      throw err;
    }
    return release;
  }

  /** The per-minute part of admitTurn alone (a re-send waiting for its running turn). */
  async chargeTurn(userId: string): Promise<void> {
    const wait = await this.#store.take(userId, 'turns', this.#perMinute.turns);
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

  async admitStart(userId: string): Promise<void> {
    const wait = await this.#store.take(userId, 'starts', this.#perMinute.starts);
    if (wait > 0) {
      this.#onLimited('starts');
      throw rateLimited('Too many new chats.', wait);
    }
  }

  async admitEmbed(userId: string): Promise<void> {
    const wait = await this.#store.take(userId, 'embeds', this.#perMinute.embeds);
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

  /** Turns running in this process (the in-process worker's fair share follows it). */
  turnsInFlight(): number {
    return this.#inFlight.total;
  }

  /**
   * How much state the limits hold in this process (exported as gauges on /metrics): users
   * with buckets in memory (0 with the Postgres store, whose table the worker prunes) and users
   * with a turn running.
   */
  stats(): { trackedUsers: number; usersWithTurnsInFlight: number } {
    const store = this.#store;
    return {
      trackedUsers: store instanceof MemoryRateStore ? store.size : 0,
      usersWithTurnsInFlight: this.#inFlight.size,
    };
  }
}
