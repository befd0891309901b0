import type { PrismaClient } from '@prisma/client';
import type { RunningTurns } from './chat/running-turns.js';
import type { RawQuery } from './db/raw.js';
import type { UserLimits } from './limits.js';
import type { Logger } from './logger.js';
import type { MemoryEvents } from './memory/events.js';
import type { FusionSettings } from './memory/fusion.js';
import type { MemoryExtractor } from './memory/types.js';
import type { Metrics } from './metrics.js';
import type { Embedder } from './providers/embeddings/types.js';
import type { ChatModel } from './providers/llm/types.js';
import type { Clock } from './time/clock.js';
import type { UsagePolicy } from './usage/budgets.js';

/** Settings the chat turn and the memory pipeline read (a slice of Env, so tests can set them). */
export interface TurnConfig {
  profileK: number;
  relationshipK: number;
  minScore: number;
  /** How recall (and memory search) fuses meaning and words. */
  fusion: FusionSettings;
  historyWindow: number;
  maxMessageChars: number;
  memoryMaxChars: number;
  memoryMaxPerTurn: number;
  dedupThreshold: number;
  memoryWritesPerMinute: number;
  jobMaxAttempts: number;
  /** Days a due follow-up stays askable before it expires. */
  followUpWindowDays: number;
  /** Estimated tokens (characters / 4) each memory section of the prompt may take. */
  promptMemoryTokens: number;
}

/** What domain code needs from the outside world, passed explicitly (no globals). */
export interface Services {
  prisma: PrismaClient;
  /** The same database without Prisma's engine, for the chat turn's hot statements (db/raw.ts). */
  sql: RawQuery;
  embedder: Embedder;
  chat: ChatModel;
  extractor: MemoryExtractor;
  logger: Logger;
  metrics: Metrics;
  config: TurnConfig;
  /** The domain's clock: turns, extraction and follow-ups read "now" only from here. */
  now: Clock;
  /** Per-user rate limits (turns, new chats, searches) and the concurrent-turn cap. */
  limits: UserLimits;
  /** Turns in flight in this process, so a concurrent retry joins instead of re-asking the model. */
  runningTurns: RunningTurns;
  /** Prices and per-user daily budgets of the usage ledger (src/usage/). */
  usage: UsagePolicy;
  /** Memory change events: published by the write paths, delivered to memoryEvents. */
  memoryEvents: MemoryEvents;
  /** Tells the in-process worker that a job is waiting (no-op when it runs elsewhere). */
  wakeWorker(): void;
}
