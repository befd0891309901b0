import { randomUUID } from 'node:crypto';
import { type App, createApp } from '../../src/app.js';
import { createVerifier, mintToken } from '../../src/auth/tokens.js';
import { createServices, createWorker, graphqlLimitsFrom } from '../../src/composition.js';
import { type Env, parseEnv } from '../../src/env.js';
import type { Worker } from '../../src/jobs/worker.js';
import { silentLogger } from '../../src/logger.js';
import { DEFAULT_PERSONAS } from '../../src/personas/defaults.js';
import { upsertPersonas } from '../../src/personas/seed.js';
import { createProviders, type Providers } from '../../src/providers/index.js';
import type { Services } from '../../src/services.js';
import type { Clock } from '../../src/time/clock.js';
import { openTestDatabase, type TestDatabase } from './database.js';

export const TEST_JWT_SECRET = 'test-secret-that-is-long-enough-for-hs256-0123456789';

export interface GraphQLResponse<T = Record<string, unknown>> {
  data?: T | null;
  errors?: { message: string; path?: (string | number)[]; extensions?: Record<string, unknown> }[];
}

export interface TestContext {
  env: Env;
  database: TestDatabase;
  services: Services;
  app: App;
  worker: Worker;
  /** POST a GraphQL operation as the given bearer token (or anonymously). */
  gql<T = Record<string, unknown>>(
    query: string,
    variables?: Record<string, unknown>,
    token?: string,
  ): Promise<GraphQLResponse<T>>;
  /** A new user with a valid token. */
  newUser(options?: { admin?: boolean; zoneinfo?: string }): Promise<{ id: string; token: string }>;
  /** Runs the worker until no job is due. */
  drainJobs(): Promise<number>;
  close(): Promise<void>;
}

let shared: Providers | undefined;

/**
 * A full app on a fresh database: real GraphQL over `yoga.fetch`, real offline providers, the
 * worker driven by the test (drainJobs) instead of a timer, for deterministic assertions.
 */
export async function createTestContext(
  options: { env?: Record<string, string>; providers?: Partial<Providers>; now?: Clock } = {},
): Promise<TestContext> {
  const env = parseEnv({
    NODE_ENV: 'test',
    JWT_SECRET: TEST_JWT_SECRET,
    WORKER_ENABLED: 'false',
    JOB_RETRY_BASE_MS: '0',
    // Tests drive many turns as one user; test/rate-limits.test.ts sets the limits it checks.
    CHAT_TURNS_PER_MINUTE: '10000',
    CHAT_STARTS_PER_MINUTE: '10000',
    CHAT_MAX_CONCURRENT_TURNS: '100',
    MEMORY_EMBEDS_PER_MINUTE: '10000',
    ...options.env,
  });
  const database = await openTestDatabase();
  await upsertPersonas(database.db.prisma, DEFAULT_PERSONAS);
  // The local embedder takes ~0.5 s to load: share the offline providers across contexts of one
  // test file; a context configured for other providers (e.g. the HTTP fakes) gets its own.
  const offline = env.EMBEDDINGS_PROVIDER === 'local' && env.LLM_PROVIDER === 'offline';
  if (offline && !shared) shared = createProviders(env, silentLogger);
  const providers = offline && shared ? shared : createProviders(env, silentLogger);
  const services = createServices(
    env,
    database.db,
    silentLogger,
    { ...providers, ...options.providers },
    { now: options.now },
  );
  const worker = createWorker(env, services);
  const authConfig = { secret: TEST_JWT_SECRET, adminUserIds: [] };
  const app = createApp({
    services,
    verifyToken: createVerifier(authConfig),
    production: false,
    limits: graphqlLimitsFrom(env),
    maxStreamsPerUser: env.SUBSCRIPTION_CONNECTIONS_PER_USER,
  });

  return {
    env,
    database,
    services,
    app,
    worker,
    async gql(query, variables, token) {
      const res = await app.fetch('http://test/graphql', {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: JSON.stringify({ query, variables }),
      });
      return res.json();
    },
    async newUser({ admin = false, zoneinfo }: { admin?: boolean; zoneinfo?: string } = {}) {
      const id = randomUUID();
      return { id, token: await mintToken(authConfig, { sub: id, admin, zoneinfo }) };
    },
    async drainJobs() {
      let total = 0;
      for (let i = 0; i < 100; i++) {
        const n = await worker.runOnce();
        if (n === 0) return total;
        total += n;
      }
      throw new Error('jobs did not drain');
    },
    close: async () => {
      await services.memoryEvents.close();
      await database.close();
    },
  };
}

/** Fails the test with the GraphQL errors if there are any; returns data. */
export function dataOf<T>(res: GraphQLResponse<T>): T {
  if (res.errors?.length || !res.data) {
    throw new Error(`GraphQL errors: ${JSON.stringify(res.errors ?? res)}`);
  }
  return res.data;
}

export function codesOf<T>(res: GraphQLResponse<T>): unknown[] {
  return (res.errors ?? []).map((e) => e.extensions?.code);
}
