import { createServer, type Server } from 'node:http';
import type { App } from './app.js';
import type { Database } from './db/client.js';

/**
 * The HTTP server: liveness and readiness beside the GraphQL app. Readiness pings the
 * database, so Fly (and load balancers) stop routing to a machine that lost it.
 */
export function createHttpServer(app: App, db: Database): Server {
  return createServer(async (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/health') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
      return;
    }
    if (path === '/ready') {
      try {
        await db.driver.query('SELECT 1');
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ready"}');
      } catch {
        res.writeHead(503, { 'content-type': 'application/json' }).end('{"status":"unavailable"}');
      }
      return;
    }
    app(req, res);
  });
}
