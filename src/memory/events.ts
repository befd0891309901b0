import type { PrismaClient } from '@prisma/client';
import type { Database } from '../db/client.js';
import { AppError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { MemoryLayer } from './types.js';

export type MemoryEventKind = 'ADDED' | 'UPDATED' | 'SUPERSEDED' | 'DELETED' | 'FORGOTTEN';

/**
 * What changed, by id only: no memory text travels through the bus (nor through Postgres
 * NOTIFY). A subscriber re-reads the memory, scoped to the watched user, when it is delivered.
 */
export interface MemoryEvent {
  kind: MemoryEventKind;
  userId: string;
  /** The memory concerned; null for FORGOTTEN (a whole scope). */
  memoryId: string | null;
  /** The relationship memory's persona instance, or a forgotten instance; null for profile. */
  instanceId: string | null;
  /** FORGOTTEN: the layer forgotten (null: both). */
  layer?: MemoryLayer | null;
  /** FORGOTTEN: how many memories went. */
  count?: number;
  /** ISO time of the commit. */
  at: string;
}

export interface DeliveredMemoryEvent extends MemoryEvent {
  /** Events dropped for this subscriber (its buffer was full) just before this one. */
  missedBefore: number;
}

export interface MemoryEventsConfig {
  db: Pick<Database, 'kind' | 'listen'>;
  prisma: PrismaClient;
  logger: Logger;
  /** Events held per subscriber before the oldest are dropped. */
  buffer: number;
  /** Subscriptions open at once per watched user. */
  maxPerUser: number;
}

const CHANNEL = 'companion_memory_events';
/** NOTIFY payloads must stay under 8000 bytes; events are batched below that. */
const MAX_PAYLOAD = 7000;
const RECONNECT_MS = 1000;

interface Subscriber {
  queue: DeliveredMemoryEvent[];
  wake: (() => void) | null;
  closed: boolean;
}

/**
 * Memory change events, published by the write paths after their transaction committed and
 * delivered to live subscribers of the same user.
 *
 * On real Postgres every process publishes with NOTIFY and each server process holds one
 * dedicated LISTEN connection (opened with the first subscriber), so events written by a worker
 * in another process reach subscribers here; a process also hears its own events that way, so
 * there is one delivery path. PGlite is one process (and LISTEN/NOTIFY does not cross its
 * socket server), so there events are handed over in memory.
 *
 * Delivery is best effort, like any live view: an event published while the listening
 * connection is down, or by a process that crashed between commit and NOTIFY, is not replayed
 * (the memory list and its history stay the source of truth). A slow subscriber holds at most
 * `buffer` events: older ones are dropped and the next event tells how many were missed, so a
 * client knows to re-read its list.
 */
export class MemoryEvents {
  readonly #config: MemoryEventsConfig;
  readonly #byUser = new Map<string, Set<Subscriber>>();
  #listening: Promise<void> | null = null;
  #listener: { close(): Promise<void> } | null = null;
  #closed = false;

  constructor(config: MemoryEventsConfig) {
    this.#config = config;
  }

  /** Never throws: a lost event must not fail the write that committed before it. */
  async publish(events: readonly Omit<MemoryEvent, 'at'>[]): Promise<void> {
    if (events.length === 0) return;
    const at = new Date().toISOString();
    const stamped = events.map((e) => ({ ...e, at }));
    if (this.#config.db.kind !== 'postgres') {
      this.#deliver(stamped);
      return;
    }
    try {
      for (const batch of batches(stamped)) {
        await this.#config.prisma.$executeRaw`SELECT pg_notify(${CHANNEL}, ${batch})`;
      }
    } catch (err) {
      this.#config.logger.warn({ err }, 'memory events not published');
    }
  }

  /**
   * The events of one user, as they come. The caller has checked that the viewer may watch
   * `userId` (the owner or an admin). Over `maxPerUser` open subscriptions: RATE_LIMITED.
   */
  async subscribe(userId: string): Promise<AsyncIterableIterator<DeliveredMemoryEvent>> {
    const set = this.#byUser.get(userId) ?? new Set<Subscriber>();
    if (set.size >= this.#config.maxPerUser) {
      throw new AppError(
        'RATE_LIMITED',
        `At most ${this.#config.maxPerUser} memoryEvents subscriptions per user at once.`,
        { retryAfterSeconds: 60 },
      );
    }
    await this.start();
    const sub: Subscriber = { queue: [], wake: null, closed: false };
    set.add(sub);
    this.#byUser.set(userId, set);
    const close = () => {
      sub.closed = true;
      set.delete(sub);
      if (set.size === 0 && this.#byUser.get(userId) === set) this.#byUser.delete(userId);
      sub.wake?.();
    };
    const done = (): IteratorResult<DeliveredMemoryEvent> => ({ done: true, value: undefined });
    const iterator: AsyncIterableIterator<DeliveredMemoryEvent> = {
      next: async () => {
        for (;;) {
          if (sub.closed) return done();
          const event = sub.queue.shift();
          if (event) return { done: false, value: event };
          await new Promise<void>((resolve) => {
            sub.wake = resolve;
          });
          sub.wake = null;
        }
      },
      return: async () => {
        close();
        return done();
      },
      throw: async (err) => {
        close();
        throw err;
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  /** Subscriptions open for a user (tests wait for one before causing an event). */
  subscriberCount(userId: string): number {
    return this.#byUser.get(userId)?.size ?? 0;
  }

  /** Opens the LISTEN connection (real Postgres); idempotent. Called by the first subscriber. */
  start(): Promise<void> {
    if (this.#config.db.kind !== 'postgres' || this.#closed) return Promise.resolve();
    this.#listening ??= this.#listen().catch((err) => {
      this.#listening = null;
      throw err;
    });
    return this.#listening;
  }

  async #listen(): Promise<void> {
    const listen = this.#config.db.listen;
    if (!listen) throw new Error('this database cannot LISTEN');
    this.#listener = await listen(
      CHANNEL,
      (payload) => this.#receive(payload),
      (err) => {
        this.#listener = null;
        this.#listening = null;
        if (this.#closed) return;
        this.#config.logger.warn({ err }, 'memory events listener lost; reconnecting');
        this.#retry();
      },
    );
  }

  #retry(): void {
    const timer = setTimeout(() => {
      if (this.#closed) return;
      this.start().catch(() => this.#retry());
    }, RECONNECT_MS);
    timer.unref();
  }

  #receive(payload: string): void {
    try {
      const events = JSON.parse(payload) as MemoryEvent[];
      if (Array.isArray(events)) this.#deliver(events);
    } catch (err) {
      this.#config.logger.warn({ err }, 'malformed memory event payload');
    }
  }

  #deliver(events: readonly MemoryEvent[]): void {
    for (const event of events) {
      for (const sub of this.#byUser.get(event.userId) ?? []) {
        // Drop the oldest; the event now first in line carries the count of those lost before it.
        let missed = 0;
        const dropped = sub.queue.length >= this.#config.buffer ? sub.queue.shift() : undefined;
        if (dropped) {
          missed = 1 + dropped.missedBefore;
          const head = sub.queue[0];
          if (head) {
            head.missedBefore += missed;
            missed = 0;
          }
        }
        sub.queue.push({ ...event, missedBefore: missed });
        sub.wake?.();
      }
    }
  }

  /** Ends every subscription (their streams complete) and the LISTEN connection. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const set of this.#byUser.values()) {
      for (const sub of set) {
        sub.closed = true;
        sub.wake?.();
      }
    }
    this.#byUser.clear();
    await this.#listener?.close();
    this.#listener = null;
  }
}

/** JSON arrays of events, each under the NOTIFY payload limit (ids only: ~250 bytes each). */
function batches(events: readonly MemoryEvent[]): string[] {
  const out: string[] = [];
  let current: MemoryEvent[] = [];
  for (const event of events) {
    current.push(event);
    if (JSON.stringify(current).length > MAX_PAYLOAD && current.length > 1) {
      current.pop();
      out.push(JSON.stringify(current));
      current = [event];
    }
  }
  if (current.length) out.push(JSON.stringify(current));
  return out;
}
