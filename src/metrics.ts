import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { orAfter } from './timeout.js';

/**
 * Prometheus metrics of one server instance (own registry, so tests can build many apps).
 * Domain code records through this object; GraphQL operation metrics come from yoga's
 * prometheus plugin on the same registry.
 */
export class Metrics {
  readonly registry = new Registry();

  readonly providerDuration = new Histogram({
    name: 'companion_provider_call_duration_seconds',
    help: 'Embedding and LLM calls by provider, operation and outcome.',
    labelNames: ['provider', 'operation', 'outcome'] as const,
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly operationDuration = new Histogram({
    name: 'companion_graphql_operation_duration_seconds',
    help: 'Executed GraphQL operations by type and root field (both bounded by the schema).',
    labelNames: ['type', 'field', 'outcome'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly rateLimited = new Counter({
    name: 'companion_rate_limited_total',
    help: 'Requests refused with RATE_LIMITED, by what was limited.',
    labelNames: ['limit'] as const,
    registers: [this.registry],
  });

  readonly recallHits = new Counter({
    name: 'companion_recall_memories_total',
    help: 'Memories recalled into turns, by layer.',
    labelNames: ['layer'] as const,
    registers: [this.registry],
  });

  readonly recallFailures = new Counter({
    name: 'companion_recall_failures_total',
    help: 'Turns answered without memories because embedding or recall failed.',
    registers: [this.registry],
  });

  readonly memoryWrites = new Counter({
    name: 'companion_memory_writes_total',
    help: 'Extracted memory candidates by outcome (added, duplicate, superseded, dropped).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly jobOutcomes = new Counter({
    name: 'companion_jobs_total',
    help: 'Job runs by kind and outcome (done, retry, dead, deferred, lost).',
    labelNames: ['kind', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly usageTokens = new Counter({
    name: 'companion_usage_tokens_total',
    help: 'Provider tokens written to the usage ledger, by kind (chat, extraction, embedding), model and direction (input, output); offline providers count words.',
    labelNames: ['kind', 'model', 'direction'] as const,
    registers: [this.registry],
  });

  readonly usageRequests = new Counter({
    name: 'companion_usage_requests_total',
    help: 'Provider requests written to the usage ledger, by kind and model.',
    labelNames: ['kind', 'model'] as const,
    registers: [this.registry],
  });

  readonly budgetExceeded = new Counter({
    name: 'companion_budget_exceeded_total',
    help: 'Work stopped by a daily budget: chat (a turn refused with BUDGET_EXCEEDED), memory (an extraction job deferred to the next UTC day).',
    labelNames: ['budget'] as const,
    registers: [this.registry],
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry });
  }

  /** Times a provider call and records its outcome. */
  async time<T>(provider: string, operation: string, fn: () => Promise<T>): Promise<T> {
    const end = this.providerDuration.startTimer({ provider, operation });
    try {
      const result = await fn();
      end({ outcome: 'ok' });
      return result;
    } catch (err) {
      end({ outcome: 'error' });
      throw err;
    }
  }

  /** How much state the per-user limits hold: proof they stay bounded. */
  registerLimitGauges(read: () => { trackedUsers: number; usersWithTurnsInFlight: number }) {
    new Gauge({
      name: 'companion_rate_limit_tracked_users',
      help: 'Users whose rate-limit buckets this process keeps in memory (0: the buckets live in Postgres).',
      registers: [this.registry],
      collect() {
        this.set(read().trackedUsers);
      },
    });
    new Gauge({
      name: 'companion_users_with_turns_in_flight',
      help: 'Users with a chat turn running in this process.',
      registers: [this.registry],
      collect() {
        this.set(read().usersWithTurnsInFlight);
      },
    });
  }

  /**
   * Exposes an extractor's running totals (model output that had to be retried, skipped or
   * discarded) as counters, read at scrape time.
   */
  registerExtractionStats(stats: object) {
    const seen: Record<string, number> = {};
    new Counter({
      name: 'companion_extraction_events_total',
      help: 'LLM extraction calls and output problems (retries, invalid items, unparseable turns).',
      labelNames: ['event'] as const,
      registers: [this.registry],
      collect() {
        for (const [event, total] of Object.entries(stats) as [string, number][]) {
          const delta = total - (seen[event] ?? 0);
          if (delta > 0) this.inc({ event }, delta);
          seen[event] = total;
        }
      },
    });
  }

  /**
   * Queue gauges, read from the database when Prometheus scrapes (at most every 5 s), so an
   * API-only machine still reports the queue that separate workers drain.
   */
  registerQueueGauges(
    read: () => Promise<{
      pending: number;
      running: number;
      dead: number;
      oldestPendingSeconds: number;
    }>,
  ) {
    type Depth = Awaited<ReturnType<typeof read>>;
    let last: Depth = { pending: 0, running: 0, dead: 0, oldestPendingSeconds: 0 };
    let lastReadAt = 0;
    let cache: { at: number; value: Promise<Depth> } | null = null;
    // A scrape while the database is away (or slow) answers within 2 s with the last values;
    // companion_jobs_read_timestamp_seconds tells how old they are (0: never read).
    const current = () => {
      if (!cache || Date.now() - cache.at > 5000) {
        const fresh = read().catch(() => null);
        const value = orAfter(fresh, 2000, null).then((depth) => {
          if (!depth) return last;
          last = depth;
          lastReadAt = Date.now();
          return depth;
        });
        cache = { at: Date.now(), value };
      }
      return cache.value;
    };
    new Gauge({
      name: 'companion_jobs_read_timestamp_seconds',
      help: 'When the job gauges were last read from the database (0: never).',
      registers: [this.registry],
      async collect() {
        await current();
        this.set(lastReadAt / 1000);
      },
    });
    const gauge = (
      name: string,
      help: string,
      pick: (q: Awaited<ReturnType<typeof read>>) => number,
    ) =>
      new Gauge({
        name,
        help,
        registers: [this.registry],
        async collect() {
          this.set(pick(await current()));
        },
      });
    gauge('companion_jobs_pending', 'Jobs waiting to run.', (q) => q.pending);
    gauge('companion_jobs_running', 'Jobs claimed by a worker.', (q) => q.running);
    gauge('companion_jobs_dead', 'Jobs that used up their attempts.', (q) => q.dead);
    gauge(
      'companion_jobs_oldest_pending_seconds',
      'Age of the oldest due job.',
      (q) => q.oldestPendingSeconds,
    );
  }
}
