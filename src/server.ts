/**
 * The API server process (`npm start`, `node dist/src/index.js`). src/index.ts only calls
 * `startServer()`: the production build bundles this module on its own and loads it through a
 * V8 code cache (src/code-cache.ts, scripts/bundle.ts), and a module that does nothing when
 * evaluated is what lets the build fill that cache without starting a server.
 */
import { createApp } from './app.js';
import { createVerifier } from './auth/tokens.js';
import {
  createServices,
  createWorker,
  graphqlLimitsFrom,
  openConfiguredDatabase,
  resolveAuth,
} from './composition.js';
import { checkServerEnv, introspectionEnabled, parseEnv } from './env.js';
import { createHttpServer, createMetricsServer } from './http.js';
import { createLogger } from './logger.js';
import { Metrics } from './metrics.js';
import { seedDefaultPersonasIfEmpty } from './personas/seed.js';
import type { Services } from './services.js';
import { attachWebSocket } from './ws.js';

/** Boot: env → db (migrated) → providers → worker → HTTP. SIGTERM drains, then exits 0. */
async function main(): Promise<void> {
  const env = parseEnv();
  checkServerEnv(env);
  const logger = createLogger(env.LOG_LEVEL);
  const db = await openConfiguredDatabase(env, logger);
  // A development database starts with the default personas; production gets its own
  // (npm run personas -- import <file>), never demo characters by surprise.
  if (env.NODE_ENV !== 'production') {
    const seeded = await seedDefaultPersonasIfEmpty(db.prisma);
    if (seeded > 0) logger.info({ seeded }, 'seeded default personas');
  }

  const services = createServices(env, db, logger, undefined, { defaultMetrics: true });
  const worker = env.WORKER_ENABLED ? createWorker(env, services, { inProcess: true }) : null;
  if (worker) {
    services.setWake(() => worker.wake());
    worker.start();
  }
  const auth = await resolveAuth(env);
  const verifyToken = createVerifier(auth.config);
  const app = createApp({
    services,
    verifyToken,
    production: env.NODE_ENV === 'production',
    limits: graphqlLimitsFrom(env),
    introspection: introspectionEnabled(env),
    corsOrigins: env.CORS_ORIGINS,
    devToken: auth.devToken,
    maxStreamsPerUser: env.SUBSCRIPTION_CONNECTIONS_PER_USER,
    // The app is served by createHttpServer below only, which enforces MAX_BODY_BYTES.
    bodyLimitedUpstream: true,
  });
  const server = createHttpServer({
    app,
    db,
    metrics: services.metrics,
    worker,
    metricsToken: env.METRICS_TOKEN,
    serveMetrics: env.METRICS_PORT === undefined,
    maxBodyBytes: env.MAX_BODY_BYTES,
  });
  const metricsServer =
    env.METRICS_PORT === undefined
      ? null
      : createMetricsServer({ metrics: services.metrics, metricsToken: env.METRICS_TOKEN });
  if (metricsServer) {
    await new Promise<void>((resolve) => metricsServer.listen(env.METRICS_PORT, env.HOST, resolve));
  }
  // A client gets this long to send its headers and whole request (slow-loris); responses,
  // such as a streamed reply, are not bound by it.
  server.headersTimeout = 15_000;
  server.requestTimeout = 30_000;
  const sockets = attachWebSocket({
    app,
    server,
    verifyToken,
    logger,
    maxMessageBytes: env.MAX_BODY_BYTES,
    maxConnectionsPerUser: env.SUBSCRIPTION_CONNECTIONS_PER_USER,
  });
  await new Promise<void>((resolve) => server.listen(env.PORT, env.HOST, resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : env.PORT;

  logger.info(
    {
      port,
      database: db.kind === 'pglite' ? `embedded PGlite (${env.DATA_DIR})` : 'postgres',
      embeddings: `${services.embedder.provider} (${services.embedder.model})`,
      llm: services.chat.provider,
      extractor: services.extractor.provider,
      worker: worker ? worker.id : 'disabled',
      metrics: env.METRICS_PORT ? `port ${env.METRICS_PORT}` : 'on PORT',
    },
    'companion API listening',
  );
  // Production with the offline providers runs (CI's smoke test does), but answers with a
  // canned companion and a small local embedder: say so loudly at every start.
  if (
    env.NODE_ENV === 'production' &&
    (env.LLM_PROVIDER === 'offline' || env.EMBEDDINGS_PROVIDER === 'local')
  ) {
    logger.warn(
      { llm: env.LLM_PROVIDER, embeddings: env.EMBEDDINGS_PROVIDER },
      'production is running on OFFLINE providers (canned replies, local embedder): set LLM_PROVIDER=openrouter and EMBEDDINGS_PROVIDER=voyage',
    );
  }
  if (auth.devToken) {
    // Printed plainly (not as JSON) so a developer can copy it from the terminal.
    process.stdout.write(
      `\nGraphiQL:  http://localhost:${port}/graphql\n` +
        'Dev token (admin, 30 days; paste into GraphiQL headers as\n' +
        '  {"Authorization": "Bearer <token>"}):\n\n' +
        `${auth.devToken}\n\n`,
    );
  }

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const deadline = setTimeout(() => {
      logger.error('shutdown deadline passed; exiting');
      process.exit(1);
    }, env.SHUTDOWN_TIMEOUT_MS + 2000).unref();
    const until = Date.now() + env.SHUTDOWN_TIMEOUT_MS;
    // Open-ended streams end first: memoryEvents subscriptions complete and WebSockets close
    // with 1001 (a turn streaming over one goes on detached, like an HTTP client that left, and
    // whenIdle below waits for it).
    await services.memoryEvents.close();
    await sockets.close();
    // Stop accepting; in-flight requests (turns) finish before close() resolves. A keep-alive
    // connection becomes idle only after its last answer, so idle ones are closed as they
    // appear, and whatever is still open at the deadline is cut.
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    metricsServer?.close();
    const sweep = setInterval(() => server.closeIdleConnections(), 200);
    server.closeIdleConnections();
    const cut = setTimeout(() => server.closeAllConnections(), env.SHUTDOWN_TIMEOUT_MS);
    // Once the server is closed no turn can be admitted; then wait for the detached ones,
    // within the same deadline.
    const turnsDone = closed.then(async () => {
      clearInterval(sweep);
      clearTimeout(cut);
      if (!(await services.limits.whenIdle(Math.max(0, until - Date.now())))) {
        logger.warn('streamed turns still running at the shutdown deadline');
      }
    });
    await Promise.all([turnsDone, worker?.stop(env.SHUTDOWN_TIMEOUT_MS)]);
    await db.close();
    clearTimeout(deadline);
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

/**
 * For the build's code cache only (src/code-cache.ts): runs one GraphQL request through an app
 * built like the server's, with no database and nothing listening, so the request path
 * (yoga, envelop, graphql-js, this app's plugins) is compiled when the cache is written and a
 * waking machine does not compile it at its first request.
 */
export async function warmCodeCache(): Promise<void> {
  const env = parseEnv({
    NODE_ENV: 'production',
    JWT_SECRET: 'x'.repeat(32),
    DATABASE_URL: 'postgres://warm.invalid/none',
  });
  // Only what a request without a token reaches: no database behind it.
  const services = {
    prisma: {},
    logger: createLogger('silent'),
    metrics: new Metrics({ defaultMetrics: false }),
  } as unknown as Services;
  const app = createApp({
    services,
    verifyToken: async () => {
      throw new Error('no tokens while warming');
    },
    production: true,
    limits: graphqlLimitsFrom(env),
    corsOrigins: [],
  });
  const response = await app.fetch('http://localhost/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: 'query Warm { __typename }' }),
  });
  const body = await response.text();
  if (response.status !== 200 || !body.includes('"__typename":"Query"')) {
    throw new Error(`code cache warm-up request failed: HTTP ${response.status} ${body}`);
  }
}

/** Starts the server; a failed start prints the error and exits 1. */
export function startServer(): void {
  main().catch((err) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
