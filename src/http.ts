import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { App } from './app.js';
import type { Database } from './db/client.js';
import type { Worker } from './jobs/worker.js';
import type { Metrics } from './metrics.js';

export interface HttpOptions {
  app: App;
  db: Database;
  metrics: Metrics;
  worker: Worker | null;
  /** When set, /metrics requires `Authorization: Bearer <token>`. */
  metricsToken?: string;
  /** False when /metrics has a port of its own (METRICS_PORT): then it is not served here. */
  serveMetrics?: boolean;
  /** Largest accepted request body (MAX_BODY_BYTES); larger ones get HTTP 413. */
  maxBodyBytes: number;
}

class BodyTooLarge extends Error {}

/**
 * Reads a request body up to `limit` bytes. Yoga has no body limit of its own; a body that
 * was read already is handed to it as `req.body`, which @whatwg-node/server (yoga's HTTP
 * layer) uses instead of the stream, the way it serves framework-parsed bodies.
 */
async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw new BodyTooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new BodyTooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

function bearerMatches(req: IncomingMessage, token: string): boolean {
  const given = Buffer.from(req.headers.authorization ?? '');
  const expected = Buffer.from(`Bearer ${token}`);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

async function serveMetrics(
  req: IncomingMessage,
  res: ServerResponse,
  o: { metrics: Metrics; metricsToken?: string },
): Promise<void> {
  if (o.metricsToken && !bearerMatches(req, o.metricsToken)) {
    res.writeHead(401, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: 'metrics token required' }));
    return;
  }
  // An async handler's rejection would be unhandled: answer it here.
  try {
    const text = await o.metrics.registry.metrics();
    res.writeHead(200, { 'content-type': o.metrics.registry.contentType }).end(text);
  } catch {
    res.writeHead(503, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: 'metrics unavailable' }));
  }
}

/**
 * METRICS_PORT: /metrics alone on a port of its own. fly.toml exposes only PORT to the
 * internet and scrapes this one over Fly's private network; METRICS_TOKEN, if set, is still
 * required here.
 */
export function createMetricsServer(o: { metrics: Metrics; metricsToken?: string }): Server {
  return createServer(async (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/metrics' && (req.method === 'GET' || req.method === 'HEAD')) {
      await serveMetrics(req, res, o);
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
  });
}

/**
 * The HTTP server: liveness, readiness and metrics beside the GraphQL app. Readiness pings
 * the database (and reports the worker), so Fly stops routing to a machine that lost it.
 */
export function createHttpServer(o: HttpOptions): Server {
  const json = (status: number, body: unknown) => ({ status, body: JSON.stringify(body) });
  return createServer(async (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    let reply: { status: number; body: string } | null = null;
    if (path === '/health') reply = json(200, { status: 'ok' });
    if (path === '/ready') {
      const worker = o.worker ? { id: o.worker.id, ...o.worker.status() } : 'disabled';
      try {
        await o.db.driver.query('SELECT 1');
        reply = json(200, { status: 'ready', database: 'ok', worker });
      } catch {
        reply = json(503, { status: 'unavailable', database: 'unreachable', worker });
      }
    }
    if (path === '/metrics' && o.serveMetrics !== false) {
      await serveMetrics(req, res, o);
      return;
    }
    if (reply) {
      res.writeHead(reply.status, { 'content-type': 'application/json' }).end(reply.body);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      try {
        const body = await readBody(req, o.maxBodyBytes);
        if (body.length > 0) (req as IncomingMessage & { body?: Buffer }).body = body;
      } catch (err) {
        if (!(err instanceof BodyTooLarge)) {
          res.destroy(); // the client went away mid-body
          return;
        }
        const message = `Request body is larger than ${o.maxBodyBytes} bytes.`;
        const body = JSON.stringify({
          errors: [{ message, extensions: { code: 'PAYLOAD_TOO_LARGE' } }],
        });
        // Close: the rest of an oversized body is not worth reading.
        // Destroyed only once the answer is flushed, so a client still uploading can read it.
        res
          .writeHead(413, { 'content-type': 'application/json', connection: 'close' })
          .end(body, () => req.destroy());
        return;
      }
    }
    o.app(req, res);
  });
}
