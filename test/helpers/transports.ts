import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createVerifier } from '../../src/auth/tokens.js';
import { createHttpServer } from '../../src/http.js';
import { attachWebSocket, type WebSocketTransport } from '../../src/ws.js';
import { TEST_JWT_SECRET, type TestContext } from './app.js';

/**
 * The real node HTTP server around the test app, as src/index.ts builds it: HTTP and the
 * WebSocket transport on one ephemeral port of 127.0.0.1.
 */
export async function startServer(t: TestContext) {
  const server: Server = createHttpServer({
    app: t.app,
    db: t.database.db,
    metrics: t.services.metrics,
    worker: null,
    maxBodyBytes: t.env.MAX_BODY_BYTES,
  });
  const sockets: WebSocketTransport = attachWebSocket({
    app: t.app,
    server,
    verifyToken: createVerifier({ secret: TEST_JWT_SECRET, adminUserIds: [] }),
    logger: t.services.logger,
    maxMessageBytes: t.env.MAX_BODY_BYTES,
    maxConnectionsPerUser: t.env.SUBSCRIPTION_CONNECTIONS_PER_USER,
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    http: `http://127.0.0.1:${port}/graphql`,
    ws: `ws://127.0.0.1:${port}/graphql`,
    sockets,
    close: async () => {
      await sockets.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
