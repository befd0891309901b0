import { DEV_USER_ID, loadDevSecret } from './auth/dev.js';
import { type AuthConfig, mintToken } from './auth/tokens.js';
import { RunningTurns } from './chat/running-turns.js';
import { type Database, openDatabase } from './db/client.js';
import { rawQueryOf } from './db/raw.js';
import { type Env, parseServiceKeys } from './env.js';
import type { GraphQLLimits } from './graphql/armor.js';
import { pruneTables } from './jobs/prune.js';
import { queueDepth } from './jobs/queue.js';
import { Worker } from './jobs/worker.js';
import { UserLimits } from './limits.js';
import { PostgresRateStore } from './limits-store.js';
import type { Logger } from './logger.js';
import { MemoryEvents } from './memory/events.js';
import { EXTRACT_MEMORIES, extractMemoriesHandler } from './memory/extract-job.js';
import { LlmExtractor } from './memory/extract-llm.js';
import type { FusionSettings } from './memory/fusion.js';
import { Metrics } from './metrics.js';
import { createProviders, type Providers } from './providers/index.js';
import {
  instrumentChat,
  instrumentEmbedder,
  instrumentExtractor,
} from './providers/instrumented.js';
import type { Services, TurnConfig } from './services.js';
import { type Clock, systemClock } from './time/clock.js';
import type { UsagePolicy } from './usage/budgets.js';
import { pruneLedger } from './usage/ledger.js';
import { priceTable } from './usage/prices.js';

export function fusionFromEnv(env: Env): FusionSettings {
  return {
    vectorWeight: env.RECALL_VECTOR_WEIGHT,
    lexicalWeight: env.RECALL_LEXICAL_WEIGHT,
    vectorDepth: env.RECALL_VECTOR_DEPTH,
    lexicalDepth: env.RECALL_LEXICAL_DEPTH,
    rrfK: env.RECALL_RRF_K,
    annMinRows: env.RECALL_ANN_MIN_ROWS,
    annVectorDepth: env.RECALL_ANN_VECTOR_DEPTH,
  };
}

export function turnConfigFrom(env: Env): TurnConfig {
  return {
    profileK: env.RECALL_PROFILE_K,
    relationshipK: env.RECALL_RELATIONSHIP_K,
    minScore: env.RECALL_MIN_SCORE,
    fusion: fusionFromEnv(env),
    historyWindow: env.HISTORY_WINDOW,
    maxMessageChars: env.MAX_MESSAGE_CHARS,
    memoryMaxChars: env.MEMORY_MAX_CHARS,
    memoryMaxPerTurn: env.MEMORY_MAX_PER_TURN,
    dedupThreshold: env.MEMORY_DEDUP_THRESHOLD,
    memoryWritesPerMinute: env.MEMORY_WRITES_PER_MINUTE,
    jobMaxAttempts: env.JOB_MAX_ATTEMPTS,
    followUpWindowDays: env.FOLLOW_UP_WINDOW_DAYS,
    promptMemoryTokens: env.PROMPT_MEMORY_SECTION_TOKENS,
  };
}

/** Prices and budgets; a budget with neither tokens nor cost set is no budget. */
export function usagePolicyFrom(env: Env): UsagePolicy {
  const budget = (tokens: number | undefined, costUsd: number | undefined) =>
    tokens === undefined && costUsd === undefined
      ? null
      : { tokens: tokens ?? null, costUsd: costUsd ?? null };
  return {
    prices: priceTable(env.USAGE_PRICES),
    chat: budget(env.CHAT_DAILY_TOKEN_BUDGET, env.CHAT_DAILY_COST_BUDGET_USD),
    memory: budget(env.MEMORY_DAILY_TOKEN_BUDGET, env.MEMORY_DAILY_COST_BUDGET_USD),
  };
}

export function graphqlLimitsFrom(env: Env): GraphQLLimits {
  return {
    maxDepth: env.GRAPHQL_MAX_DEPTH,
    maxAliases: env.GRAPHQL_MAX_ALIASES,
    maxCost: env.GRAPHQL_MAX_COST,
    maxTokens: env.GRAPHQL_MAX_TOKENS,
    maxDirectives: env.GRAPHQL_MAX_DIRECTIVES,
    maxListItems: env.GRAPHQL_MAX_LIST_ITEMS,
  };
}

export function openConfiguredDatabase(env: Env, logger: Logger): Promise<Database> {
  const session = { hnswEfSearch: env.RECALL_ANN_EF_SEARCH };
  return env.DATABASE_URL
    ? openDatabase({ url: env.DATABASE_URL, poolSize: env.DATABASE_POOL_SIZE, logger, session })
    : openDatabase({ dataDir: env.DATA_DIR, logger, session });
}

/**
 * The extraction worker. `inProcess`: it shares the event loop with the server's turns, so it
 * takes its fair share (WORKER_FAIR_SHARE) of the work in flight.
 */
export function createWorker(
  env: Env,
  services: Services,
  options: { inProcess?: boolean } = {},
): Worker {
  return new Worker({
    prisma: services.prisma,
    handlers: { [EXTRACT_MEMORIES]: extractMemoriesHandler(services) },
    logger: services.logger,
    concurrency: env.WORKER_CONCURRENCY,
    pollMs: env.WORKER_POLL_MS,
    leaseMs: env.JOB_LEASE_MS,
    retryBaseMs: env.JOB_RETRY_BASE_MS,
    metrics: services.metrics,
    fairShare:
      options.inProcess && env.WORKER_FAIR_SHARE > 0
        ? {
            inFlight: () => services.limits.turnsInFlight(),
            ratio: env.WORKER_FAIR_SHARE,
            max: env.WORKER_CONCURRENCY * 4,
          }
        : undefined,
    housekeeping: {
      everyMs: Math.min(60_000, Math.max(1_000, env.JOB_RETENTION_MS / 4)),
      run: async () => {
        await pruneTables(services.prisma, env.JOB_RETENTION_MS, services.logger);
        await pruneLedger(services.prisma, services.now(), env.USAGE_RETENTION_DAYS);
      },
    },
  });
}

/** Wires services; the worker (if any) is attached afterwards through `setWake`. */
export function createServices(
  env: Env,
  db: Database,
  logger: Logger,
  providers: Providers = createProviders(env, logger),
  options: { defaultMetrics?: boolean; now?: Clock } = {},
): Services & { setWake(fn: () => void): void } {
  let wake = () => {};
  const metrics = new Metrics({ defaultMetrics: options.defaultMetrics ?? false });
  const sql = rawQueryOf(db.driver, { prepared: env.DATABASE_PREPARED_STATEMENTS });
  metrics.registerQueueGauges(() => queueDepth(db.prisma));
  const limits = new UserLimits({
    turnsPerMinute: env.CHAT_TURNS_PER_MINUTE,
    startsPerMinute: env.CHAT_STARTS_PER_MINUTE,
    embedsPerMinute: env.MEMORY_EMBEDS_PER_MINUTE,
    maxConcurrentTurns: env.CHAT_MAX_CONCURRENT_TURNS,
    store: new PostgresRateStore(sql),
    onLimited: (limit) => metrics.rateLimited.inc({ limit }),
  });
  metrics.registerLimitGauges(() => limits.stats());
  if (providers.extractor instanceof LlmExtractor) {
    metrics.registerExtractionStats(providers.extractor.stats);
  }
  return {
    prisma: db.prisma,
    sql,
    embedder: instrumentEmbedder(providers.embedder, metrics),
    chat: instrumentChat(providers.chat, metrics),
    extractor: instrumentExtractor(providers.extractor, metrics),
    logger,
    metrics,
    config: turnConfigFrom(env),
    now: options.now ?? systemClock,
    limits,
    runningTurns: new RunningTurns(),
    usage: usagePolicyFrom(env),
    memoryEvents: new MemoryEvents({
      db,
      prisma: db.prisma,
      logger,
      buffer: env.MEMORY_EVENTS_BUFFER,
      maxPerUser: env.MEMORY_EVENTS_PER_USER,
    }),
    wakeWorker: () => wake(),
    setWake: (fn) => {
      wake = fn;
    },
  };
}

/**
 * HS256 secret and/or JWKS as configured, or in zero-config development a persisted dev secret
 * and a ready token.
 */
export async function resolveAuth(env: Env): Promise<{ config: AuthConfig; devToken?: string }> {
  const base = {
    issuer: env.JWT_ISSUER,
    audience: env.JWT_AUDIENCE,
    clockToleranceSeconds: env.JWT_CLOCK_TOLERANCE_S,
    adminUserIds: env.ADMIN_USER_IDS,
    anonymousUsers: env.AUTH_ANONYMOUS_USERS,
    serviceRole: env.AUTH_SERVICE_ROLE,
    serviceKeys: parseServiceKeys(env.SERVICE_API_KEYS),
  };
  const secret = env.JWT_SECRET ?? env.SUPABASE_JWT_SECRET;
  if (secret || env.JWKS_URL) return { config: { ...base, secret, jwksUrl: env.JWKS_URL } };
  const config = { ...base, secret: await loadDevSecret(env.DATA_DIR) };
  const devToken = await mintToken(config, { sub: DEV_USER_ID, admin: true, expiresIn: '30d' });
  return { config, devToken };
}
