import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpServer } from '../src/http.js';
import { createTestContext, type TestContext } from './helpers/app.js';
import { personaIds, send, startChat } from './helpers/chat.js';

let t: TestContext;
let server: Server;
let base: string;
const METRICS_TOKEN = 'metrics-token-0123456789';

beforeAll(async () => {
  t = await createTestContext();
  server = createHttpServer({
    app: t.app,
    db: t.database.db,
    metrics: t.services.metrics,
    worker: t.worker,
    metricsToken: METRICS_TOKEN,
    maxBodyBytes: t.env.MAX_BODY_BYTES,
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  await t?.close();
});

describe('operations endpoints', () => {
  it('/health answers without touching the database; /ready pings it and reports the worker', async () => {
    expect(await (await fetch(`${base}/health`)).json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${base}/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({
      status: 'ready',
      database: 'ok',
      worker: { id: t.worker.id, running: false, inFlight: 0 },
    });
  });

  it('/metrics needs the token and reports turns, recall, providers, jobs and memory writes', async () => {
    expect((await fetch(`${base}/metrics`)).status).toBe(401);
    expect(
      (await fetch(`${base}/metrics`, { headers: { authorization: 'Bearer wrong' } })).status,
    ).toBe(401);

    const user = await t.newUser();
    const { sessionId } = await startChat(
      t,
      user.token,
      (await personaIds(t, user.token)).mira as string,
    );
    await send(t, user.token, sessionId, 'I am a firefighter');
    await t.drainJobs();
    await send(t, user.token, sessionId, 'What do you know about my job?');

    const res = await fetch(`${base}/metrics`, {
      headers: { authorization: `Bearer ${METRICS_TOKEN}` },
    });
    expect(res.status).toBe(200);
    const text = await res.text();
    for (const pattern of [
      /graphql_envelop_request_duration_count\{operationType="mutation"\} [1-9]/,
      /companion_graphql_operation_duration_seconds_count\{type="mutation",field="sendMessage",outcome="ok"\} 2/,
      /companion_provider_call_duration_seconds_count\{provider="local",operation="embed_query",outcome="ok"\} [1-9]/,
      /companion_provider_call_duration_seconds_count\{provider="offline",operation="chat",outcome="ok"\} 2/,
      /companion_recall_memories_total\{layer="profile"\} [1-9]/,
      /companion_jobs_total\{kind="extract_memories",outcome="done"\} 1/,
      /companion_memory_writes_total\{outcome="added"\} [1-9]/,
      /companion_jobs_pending 1/,
      /companion_jobs_dead 0/,
    ]) {
      expect(text).toMatch(pattern);
    }
    // Client-chosen operation names and URLs never become label values (unbounded series).
    expect(text).not.toMatch(/operationName=|url=/);
  });
});
