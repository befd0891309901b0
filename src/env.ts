import { z } from 'zod';
import { DEFAULT_HNSW_EF_SEARCH } from './db/settings.js';
import { DEFAULT_FUSION } from './memory/fusion.js';
import { pricesJsonSchema } from './usage/prices.js';

/**
 * Every setting of the server, parsed once at boot. Nothing else reads process.env.
 * Each variable is described here; README's table is checked against this schema by a test.
 */
const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const csv = z.string().transform((v) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
);

export const envSchema = z.object({
  NODE_ENV: z
    .enum(['development', 'production', 'test'])
    .default('development')
    .describe(
      'production requires JWT_SECRET or JWKS_URL (no dev token) and DATABASE_URL, the server also METRICS_TOKEN or METRICS_PORT; it disables GraphiQL and (by default) introspection.',
    ),
  PORT: z.coerce.number().int().min(0).max(65535).default(4000).describe('HTTP port.'),
  HOST: z.string().default('0.0.0.0').describe('Interface to listen on.'),
  LOG_LEVEL: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
    .default('info')
    .describe('pino log level.'),

  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
    .optional()
    .describe('Postgres 15+ with pgvector. Unset: embedded PGlite in DATA_DIR.'),
  DATABASE_POOL_SIZE: z.coerce
    .number()
    .int()
    .min(1)
    .max(100)
    .default(10)
    .describe('Max connections in the pg pool (real Postgres only).'),
  DATABASE_PREPARED_STATEMENTS: bool
    .default(true)
    .describe(
      "Run the chat turn's statements as named prepared statements (planned once per connection). Set false behind a transaction-mode pooler that does not track them (PgBouncer < 1.21, or without max_prepared_statements).",
    ),
  DATA_DIR: z
    .string()
    .default('./.data')
    .describe('Embedded PGlite data directory (and dev secret).'),

  JWT_SECRET: z
    .string()
    .min(32)
    .optional()
    .describe('HS256 secret for bearer tokens (>= 32 chars).'),
  SUPABASE_JWT_SECRET: z
    .string()
    .min(32)
    .optional()
    .describe('Accepted as an alias of JWT_SECRET (Supabase projects).'),
  JWKS_URL: z
    .url()
    .optional()
    .describe(
      'JWKS endpoint for RS256/ES256/EdDSA tokens (e.g. Supabase `<project>/auth/v1/.well-known/jwks.json`). Can be combined with JWT_SECRET.',
    ),
  JWT_ISSUER: z.string().optional().describe('If set, tokens must carry this `iss`.'),
  JWT_AUDIENCE: z.string().optional().describe('If set, tokens must carry this `aud`.'),
  JWT_CLOCK_TOLERANCE_S: z.coerce
    .number()
    .int()
    .min(0)
    .max(300)
    .default(30)
    .describe('Seconds of clock difference tolerated when checking `exp` and `nbf`.'),
  ADMIN_USER_IDS: csv.default([]).describe('Comma-separated user UUIDs that are admins.'),

  EMBEDDINGS_PROVIDER: z
    .enum(['local', 'voyage'])
    .default('local')
    .describe('local: offline Universal Sentence Encoder lite. voyage: Voyage AI API.'),
  VOYAGE_API_KEY: z.string().optional().describe('Required when EMBEDDINGS_PROVIDER=voyage.'),
  VOYAGE_MODEL: z.string().default('voyage-3-lite').describe('Voyage model (512-dim output).'),
  VOYAGE_BASE_URL: z.url().default('https://api.voyageai.com/v1').describe('Voyage API base URL.'),
  VOYAGE_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(100)
    .default(15000)
    .describe('Per-request timeout.'),
  VOYAGE_MAX_RETRIES: z.coerce
    .number()
    .int()
    .min(0)
    .max(10)
    .default(4)
    .describe('Retries on 429/5xx/network.'),

  LLM_PROVIDER: z
    .enum(['offline', 'openrouter'])
    .default('offline')
    .describe('offline: deterministic built-in companion. openrouter: OpenRouter chat API.'),
  OPENROUTER_API_KEY: z.string().optional().describe('Required when LLM_PROVIDER=openrouter.'),
  OPENROUTER_BASE_URL: z
    .url()
    .default('https://openrouter.ai/api/v1')
    .describe('OpenRouter base URL.'),
  OPENROUTER_CHAT_MODEL: z.string().default('openai/gpt-4o-mini').describe('Model for replies.'),
  OPENROUTER_EXTRACTION_MODEL: z
    .string()
    .default('openai/gpt-4o-mini')
    .describe('Model for memory extraction.'),
  OPENROUTER_FALLBACK_MODELS: csv
    .default([])
    .describe('Comma-separated models tried in order on failure.'),
  OPENROUTER_MAX_TOKENS: z.coerce
    .number()
    .int()
    .min(16)
    .max(32000)
    .default(1024)
    .describe('Longest reply, in tokens (max_tokens); bounds what a turn stores and streams.'),
  OPENROUTER_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(100)
    .default(30000)
    .describe(
      'Per-request timeout; for a streamed reply the longest silence between chunks, and 4× this for the whole stream.',
    ),
  OPENROUTER_MAX_RETRIES: z.coerce
    .number()
    .int()
    .min(0)
    .max(10)
    .default(2)
    .describe('Retries on 429/5xx/network.'),

  RECALL_PROFILE_K: z.coerce
    .number()
    .int()
    .min(0)
    .max(50)
    .default(3)
    .describe('Profile memories per turn.'),
  RECALL_RELATIONSHIP_K: z.coerce
    .number()
    .int()
    .min(0)
    .max(50)
    .default(8)
    .describe('Relationship memories per turn.'),
  RECALL_MIN_SCORE: z.coerce
    .number()
    .min(-1)
    .max(1)
    .default(0.1)
    .describe('Cosine similarity below which a memory is not recalled.'),
  RECALL_VECTOR_WEIGHT: z.coerce
    .number()
    .min(0)
    .max(10)
    .default(DEFAULT_FUSION.vectorWeight)
    .describe('Weight of meaning (embedding rank) in the fused recall and memory search ranking.'),
  RECALL_LEXICAL_WEIGHT: z.coerce
    .number()
    .min(0)
    .max(10)
    .default(DEFAULT_FUSION.lexicalWeight)
    .describe('Weight of words (BM25 rank) in the fused recall and memory search ranking.'),
  RECALL_VECTOR_DEPTH: z.coerce
    .number()
    .int()
    .min(1)
    .max(200)
    .default(DEFAULT_FUSION.vectorDepth)
    .describe('Memories the meaning side contributes to the fusion, per layer.'),
  RECALL_LEXICAL_DEPTH: z.coerce
    .number()
    .int()
    .min(1)
    .max(200)
    .default(DEFAULT_FUSION.lexicalDepth)
    .describe('Memories the words side (BM25) contributes to the fusion, per layer.'),
  RECALL_RRF_K: z.coerce
    .number()
    .min(1)
    .max(1000)
    .default(DEFAULT_FUSION.rrfK)
    .describe(
      'Reciprocal rank fusion constant: a memory ranked r by a side earns weight / (k + r).',
    ),
  RECALL_ANN_MIN_ROWS: z.coerce
    .number()
    .int()
    .min(1)
    .default(DEFAULT_FUSION.annMinRows)
    .describe(
      'Live memories from which a layer ranks its meaning side through the HNSW index (approximate) instead of an exact scan.',
    ),
  RECALL_ANN_VECTOR_DEPTH: z.coerce
    .number()
    .int()
    .min(1)
    .max(1000)
    .default(DEFAULT_FUSION.annVectorDepth)
    .describe(
      'Memories the meaning side contributes for a layer above RECALL_ANN_MIN_ROWS (HNSW path; at most RECALL_VECTOR_DEPTH): fewer scan less of the shared index.',
    ),
  RECALL_ANN_EF_SEARCH: z.coerce
    .number()
    .int()
    .min(10)
    .max(1000)
    .default(DEFAULT_HNSW_EF_SEARCH)
    .describe(
      'pgvector hnsw.ef_search for layers above RECALL_ANN_MIN_ROWS: candidates the index keeps per scan (higher: closer to exact, slower).',
    ),
  HISTORY_WINDOW: z.coerce
    .number()
    .int()
    .min(0)
    .max(100)
    .default(12)
    .describe('Recent messages in the prompt.'),
  FOLLOW_UP_WINDOW_DAYS: z.coerce
    .number()
    .int()
    .min(1)
    .max(365)
    .default(7)
    .describe(
      "Days after a follow-up is due (the day after the event, in the user's time zone) that a persona may still ask about it; then it expires.",
    ),
  MAX_MESSAGE_CHARS: z.coerce
    .number()
    .int()
    .min(1)
    .max(100000)
    .default(4000)
    .describe('Max user message length.'),
  MEMORY_MAX_CHARS: z.coerce
    .number()
    .int()
    .min(20)
    .max(5000)
    .default(500)
    .describe('Max length of one memory.'),
  MEMORY_MAX_PER_TURN: z.coerce
    .number()
    .int()
    .min(1)
    .max(100)
    .default(10)
    .describe('Max memories written per turn.'),
  MEMORY_DEDUP_THRESHOLD: z.coerce
    .number()
    .min(0)
    .max(1)
    .default(0.92)
    .describe('Cosine similarity at or above which a new memory is a duplicate of a stored one.'),

  MEMORY_WRITES_PER_MINUTE: z.coerce
    .number()
    .int()
    .min(1)
    .max(10000)
    .default(60)
    .describe('Per-user memory writes per minute; jobs over it wait (deferred, never dropped).'),
  WORKER_ENABLED: bool
    .default(true)
    .describe('Run the extraction worker inside the server process.'),
  WORKER_CONCURRENCY: z.coerce
    .number()
    .int()
    .min(1)
    .max(32)
    .default(2)
    .describe('Jobs processed at once.'),
  WORKER_POLL_MS: z.coerce.number().int().min(10).default(1000).describe('Idle poll interval.'),
  WORKER_FAIR_SHARE: z.coerce
    .number()
    .min(0)
    .max(1)
    .default(0.25)
    .describe(
      'In-process worker only: while turns run in the same process, keep up to ceil(turns in flight × this) jobs in flight (at least WORKER_CONCURRENCY, at most 4× it), so extraction keeps about this share of the event loop under load. 0: always WORKER_CONCURRENCY.',
    ),
  JOB_LEASE_MS: z.coerce
    .number()
    .int()
    .min(1000)
    .default(30000)
    .describe(
      'Lease of a claimed job, renewed by its worker every third of it while the job runs; a job is claimed again only when its lease lapsed (its worker died), so about this long after a crash.',
    ),
  JOB_RETENTION_MS: z.coerce
    .number()
    .int()
    .min(1000)
    .default(604800000)
    .describe(
      'Finished (DONE) jobs are deleted this long after they finished (default 7 days), in small batches by the worker. Dead jobs stay until an admin retries or discards them.',
    ),
  JOB_RETRY_BASE_MS: z.coerce
    .number()
    .int()
    .min(0)
    .default(2000)
    .describe(
      'First retry delay of a failed job; doubles per attempt, with jitter, capped at 1 h.',
    ),
  JOB_MAX_ATTEMPTS: z.coerce
    .number()
    .int()
    .min(1)
    .max(100)
    .default(5)
    .describe('Attempts before a job is dead.'),
  USAGE_PRICES: pricesJsonSchema
    .optional()
    .describe(
      'Model prices for the usage ledger\'s estimated cost, as JSON: {"<model>": {"input": <USD per million tokens>, "output": <USD per million tokens>}}; added to (and overriding) the defaults: openai/gpt-4o-mini 0.15/0.60, voyage-3-lite and voyage-3.5-lite 0.02/0, the offline models 0. A model without a price costs "unknown" (null), never 0.',
    ),
  CHAT_DAILY_TOKEN_BUDGET: z.coerce
    .number()
    .int()
    .min(1)
    .optional()
    .describe(
      'Per-user reply tokens (input + output, kind chat) per UTC day; over it a turn answers BUDGET_EXCEEDED with resetsAt (00:00 UTC). Unset: no budget.',
    ),
  CHAT_DAILY_COST_BUDGET_USD: z.coerce
    .number()
    .positive()
    .optional()
    .describe(
      'Per-user estimated reply cost in USD per UTC day (priced models only); over it: BUDGET_EXCEEDED. Unset: no budget.',
    ),
  MEMORY_DAILY_TOKEN_BUDGET: z.coerce
    .number()
    .int()
    .min(1)
    .optional()
    .describe(
      'Per-user memory-work tokens (extraction and embedding) per UTC day; over it extraction jobs wait until 00:00 UTC (deferred, never dropped). Unset: no budget.',
    ),
  MEMORY_DAILY_COST_BUDGET_USD: z.coerce
    .number()
    .positive()
    .optional()
    .describe(
      'Per-user estimated memory-work cost in USD per UTC day (priced models only); over it extraction waits until 00:00 UTC. Unset: no budget.',
    ),
  USAGE_RETENTION_DAYS: z.coerce
    .number()
    .int()
    .min(31)
    .max(36600)
    .default(400)
    .describe(
      'Usage ledger rows (one per user, UTC day, kind and model) older than this many days are deleted by the worker, in small batches.',
    ),
  PROMPT_MEMORY_SECTION_TOKENS: z.coerce
    .number()
    .int()
    .min(200)
    .max(100000)
    .default(1000)
    .describe(
      'Token budget of each memory section of the prompt (profile, relationship), estimated as characters / 4; over it the lowest-ranked memories are left out of the turn.',
    ),
  CHAT_TURNS_PER_MINUTE: z.coerce
    .number()
    .int()
    .min(1)
    .max(10000)
    .default(30)
    .describe(
      'Per-user chat turns (sendMessage and streamed replies) per minute, with a burst of the same size; over it: RATE_LIMITED with retryAfterSeconds.',
    ),
  CHAT_STARTS_PER_MINUTE: z.coerce
    .number()
    .int()
    .min(1)
    .max(10000)
    .default(10)
    .describe('Per-user startChat calls per minute; over it: RATE_LIMITED.'),
  MEMORY_EMBEDS_PER_MINUTE: z.coerce
    .number()
    .int()
    .min(1)
    .max(10000)
    .default(60)
    .describe(
      'Per-user memory searches (`search` on memory queries) and memory edits per minute, together: each embeds text (a paid call with Voyage); over it: RATE_LIMITED.',
    ),
  CHAT_MAX_CONCURRENT_TURNS: z.coerce
    .number()
    .int()
    .min(1)
    .max(100)
    .default(2)
    .describe(
      'Turns of one user answered at the same time by one server process (a per-machine resource guard); more: RATE_LIMITED.',
    ),
  SUBSCRIPTION_CONNECTIONS_PER_USER: z.coerce
    .number()
    .int()
    .min(1)
    .max(1000)
    .default(8)
    .describe(
      'Streaming connections one user may hold open at once, per process: WebSockets and graphql-sse single-connection streams, each; over it the socket is closed (4429) or the reservation refused (HTTP 429).',
    ),
  MEMORY_EVENTS_PER_USER: z.coerce
    .number()
    .int()
    .min(1)
    .max(1000)
    .default(8)
    .describe(
      'memoryEvents subscriptions open at once per watched user, per process; more: RATE_LIMITED.',
    ),
  MEMORY_EVENTS_BUFFER: z.coerce
    .number()
    .int()
    .min(1)
    .max(10000)
    .default(100)
    .describe(
      'Events held for one slow memoryEvents subscriber; over it the oldest are dropped and the next event says how many (`missedBefore`).',
    ),
  MAX_BODY_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(10485760)
    .default(65536)
    .describe('Largest accepted HTTP request body; larger: HTTP 413.'),
  GRAPHQL_MAX_DEPTH: z.coerce
    .number()
    .int()
    .min(1)
    .max(100)
    .default(12)
    .describe('Deepest field nesting of an operation (introspection excepted).'),
  GRAPHQL_MAX_ALIASES: z.coerce
    .number()
    .int()
    .min(0)
    .max(1000)
    .default(15)
    .describe('Aliases in one operation.'),
  GRAPHQL_MAX_COST: z.coerce
    .number()
    .int()
    .min(1)
    .default(30000)
    .describe(
      "graphql-armor's cost estimate of one operation (objects 2, scalars 1, ×1.5 per level of depth); a dashboard's sessions → messages query costs ~11k.",
    ),
  GRAPHQL_MAX_TOKENS: z.coerce
    .number()
    .int()
    .min(100)
    .default(2000)
    .describe('Tokens in one GraphQL document.'),
  GRAPHQL_MAX_LIST_ITEMS: z.coerce
    .number()
    .int()
    .min(100)
    .max(100000)
    .default(5000)
    .describe(
      'Rows one operation may ask for across its memory, message and history pages (the sum of `first` over every page, nested pages multiplied out); over it: BAD_USER_INPUT.',
    ),
  GRAPHQL_MAX_DIRECTIVES: z.coerce
    .number()
    .int()
    .min(0)
    .default(10)
    .describe('Directives in one operation.'),
  METRICS_TOKEN: z
    .string()
    .min(16)
    .optional()
    .describe('If set, GET /metrics requires `Authorization: Bearer <token>`.'),
  METRICS_PORT: z.coerce
    .number()
    .int()
    .min(1)
    .max(65535)
    .optional()
    .describe(
      'If set, /metrics is served only on this port (internal: fly.toml scrapes it, no public route) and not on PORT.',
    ),
  GRAPHQL_INTROSPECTION: bool
    .optional()
    .describe(
      'Answer introspection queries. Default: on, except with NODE_ENV=production (schema.graphql is published anyway).',
    ),
  CORS_ORIGINS: csv
    .default([])
    .describe(
      'Comma-separated browser origins allowed to call the API (e.g. `https://app.example.com`). Empty: any origin outside production, none in production.',
    ),
  AUTH_ANONYMOUS_USERS: z
    .enum(['allow', 'refuse'])
    .default('allow')
    .describe(
      'Supabase anonymous sign-ins (`is_anonymous: true` tokens): allow them as users, or refuse them (UNAUTHENTICATED).',
    ),
  AUTH_SERVICE_ROLE: bool
    .default(false)
    .describe(
      'Accept Supabase `service_role` tokens (role claim, no `sub`) as server-to-server callers with admin scope.',
    ),
  SERVICE_API_KEYS: csv
    .default([])
    .describe(
      'Server-to-server API keys as comma-separated `id:secret` pairs (secret >= 32 chars); a caller sends `Authorization: Bearer id:secret` and acts with admin scope.',
    ),
  SHUTDOWN_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(0)
    .default(10000)
    .describe('Drain deadline on SIGTERM.'),
});

export type Env = z.infer<typeof envSchema>;

export function parseEnv(source: Record<string, string | undefined> = process.env): Env {
  // Empty strings count as unset: `FOO=` in a .env file should not fail a URL check.
  const cleaned = Object.fromEntries(
    Object.entries(source).filter(([, v]) => v !== undefined && v !== ''),
  );
  const result = envSchema.safeParse(cleaned);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new Error(`Invalid configuration:\n${lines.join('\n')}`);
  }
  const env = result.data;
  if (env.EMBEDDINGS_PROVIDER === 'voyage' && !env.VOYAGE_API_KEY) {
    throw new Error(
      'Invalid configuration:\n  VOYAGE_API_KEY: required when EMBEDDINGS_PROVIDER=voyage',
    );
  }
  if (env.LLM_PROVIDER === 'openrouter' && !env.OPENROUTER_API_KEY) {
    throw new Error(
      'Invalid configuration:\n  OPENROUTER_API_KEY: required when LLM_PROVIDER=openrouter',
    );
  }
  if (
    env.NODE_ENV === 'production' &&
    !env.JWT_SECRET &&
    !env.SUPABASE_JWT_SECRET &&
    !env.JWKS_URL
  ) {
    throw new Error(
      'Invalid configuration:\n  JWT_SECRET: required when NODE_ENV=production (or JWKS_URL)',
    );
  }
  // The embedded database is one process's private file store, with the offline model beside
  // it: a production server on it looks healthy while it loses everything on redeploy.
  if (env.NODE_ENV === 'production' && !env.DATABASE_URL) {
    throw new Error(
      'Invalid configuration:\n  DATABASE_URL: required when NODE_ENV=production (the embedded PGlite database is for development only)',
    );
  }
  parseServiceKeys(env.SERVICE_API_KEYS);
  // A message of MAX_MESSAGE_CHARS characters (up to 4 UTF-8 bytes each, JSON-escaped at worst
  // 6 bytes) plus the operation must fit in one request body.
  if (env.MAX_BODY_BYTES < env.MAX_MESSAGE_CHARS * 6 + 4096) {
    throw new Error(
      `Invalid configuration:\n  MAX_BODY_BYTES: must be at least MAX_MESSAGE_CHARS × 6 + 4096 (${env.MAX_MESSAGE_CHARS * 6 + 4096})`,
    );
  }
  return env;
}

/** SERVICE_API_KEYS as a map from key id to secret; malformed entries refuse to start. */
export function parseServiceKeys(entries: readonly string[]): Map<string, string> {
  const keys = new Map<string, string>();
  for (const entry of entries) {
    const at = entry.indexOf(':');
    const id = entry.slice(0, at);
    const secret = entry.slice(at + 1);
    if (at < 1 || !/^[\w.-]{1,64}$/.test(id) || secret.length < 32 || keys.has(id)) {
      throw new Error(
        'Invalid configuration:\n  SERVICE_API_KEYS: each entry is `id:secret` (id: letters, digits, `_.-`; unique; secret >= 32 characters)',
      );
    }
    keys.set(id, secret);
  }
  return keys;
}

/**
 * What only the server (not the CLIs) needs in production: /metrics must not be public, so a
 * token (METRICS_TOKEN) or an internal port (METRICS_PORT) is required.
 */
export function checkServerEnv(env: Env): void {
  if (env.NODE_ENV === 'production' && !env.METRICS_TOKEN && !env.METRICS_PORT) {
    throw new Error(
      'Invalid configuration:\n  METRICS_TOKEN or METRICS_PORT: required when NODE_ENV=production (/metrics must not be public)',
    );
  }
  if (env.METRICS_PORT !== undefined && env.METRICS_PORT === env.PORT) {
    throw new Error('Invalid configuration:\n  METRICS_PORT: must differ from PORT');
  }
}

/** GRAPHQL_INTROSPECTION, defaulting to off in production. */
export const introspectionEnabled = (env: Env): boolean =>
  env.GRAPHQL_INTROSPECTION ?? env.NODE_ENV !== 'production';
