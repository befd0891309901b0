import type { Server } from 'node:http';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createHttpServer } from '../src/http.js';
import { isExtractionRequest } from './fakes/extraction.js';
import {
  type ChatBody,
  type OpenRouterFake,
  startOpenRouterFake,
} from './fakes/openrouter-fake.js';
import { startVoyageFake, type VoyageFake } from './fakes/voyage-fake.js';
import { createTestContext, type TestContext } from './helpers/app.js';
import { personaIds, startChat } from './helpers/chat.js';
import { fakeProviderEnv } from './helpers/providers.js';

/**
 * The streamed turn end to end over real sockets: OpenRouter's SSE (from the fake) in, the
 * subscription's SSE out, and a client that hangs up mid-reply.
 */
const STREAM = /* GraphQL */ `
  subscription ($input: SendMessageInput!) {
    sendMessageStream(input: $input) {
      ... on ReplyDelta { text }
      ... on ReplyDone { turn { reply { id content model } } }
    }
  }
`;

const REPLY = 'Porto by the sea sounds lovely, tell me about the boats you sailed';

function respond(body: ChatBody): string {
  if (!isExtractionRequest(body)) return REPLY;
  return JSON.stringify({
    memories: [
      { content: 'User grew up in Porto', category: 'fact', layer: 'profile', confidence: 0.9 },
    ],
  });
}

let t: TestContext;
let server: Server;
let port: number;
let voyage: VoyageFake;
let openrouter: OpenRouterFake;

beforeAll(async () => {
  voyage = await startVoyageFake();
  openrouter = await startOpenRouterFake({ responder: respond });
  t = await createTestContext({
    env: {
      ...fakeProviderEnv({ voyage, openrouter }),
      OPENROUTER_TIMEOUT_MS: '5000',
    },
  });
  server = createHttpServer({
    app: t.app,
    db: t.database.db,
    metrics: t.services.metrics,
    worker: null,
    maxBodyBytes: t.env.MAX_BODY_BYTES,
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  await t?.close();
  await voyage?.close();
  await openrouter?.close();
});

/** POSTs the subscription; calls onEvent per SSE `next` payload; resolves when the stream ends. */
function stream(
  token: string,
  input: Record<string, unknown>,
  onEvent: (data: { data?: { sendMessageStream: { text?: string } } }, hangUp: () => void) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/graphql',
        method: 'POST',
        headers: {
          accept: 'text/event-stream',
          'content-type': 'application/json',
          authorization: `Bearer ${token}`,
        },
      },
      (res) => {
        let buffer = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffer += chunk;
          for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const data = /^data: (.+)$/m.exec(block)?.[1];
            if (/^event: next$/m.test(block) && data) {
              onEvent(JSON.parse(data), () => {
                req.destroy();
                resolve();
              });
            }
          }
        });
        res.on('end', resolve);
        res.on('error', () => resolve());
      },
    );
    req.on('error', (err) => (req.destroyed ? resolve() : reject(err)));
    req.end(JSON.stringify({ query: STREAM, variables: { input } }));
  });
}

it('relays the model stream as it arrives', async () => {
  const user = await t.newUser();
  const { mira } = await personaIds(t, user.token);
  const { sessionId } = await startChat(t, user.token, mira as string);
  const texts: string[] = [];
  let final: unknown;
  // Deltas that arrive in the same instant are merged; spaced out, each is relayed on its own.
  openrouter.setDeltaDelay(() => 10);
  await stream(user.token, { sessionId, content: 'Hello!', clientMessageId: 'h-1' }, (e) => {
    const event = e.data?.sendMessageStream as { text?: string; turn?: unknown };
    if (event.text !== undefined) texts.push(event.text);
    if (event.turn) final = event.turn;
  });
  openrouter.setDeltaDelay(() => 0);
  expect(texts.length).toBeGreaterThan(3);
  expect(texts.join('')).toBe(REPLY);
  expect(final).toMatchObject({ reply: { content: REPLY } });
  const chatCall = openrouter.requests.findLast((r) => r.body && !isExtractionRequest(r.body));
  expect(chatCall?.body?.stream).toBe(true);
});

it('keeps the turn when the client hangs up mid-reply: persisted, then extracted', async () => {
  const user = await t.newUser();
  const { mira } = await personaIds(t, user.token);
  const { sessionId } = await startChat(t, user.token, mira as string);
  // Slow deltas, so the hang-up lands while the model is still answering.
  openrouter.setDeltaDelay((_body, index) => (index === 0 ? 0 : 40));
  const content = 'I grew up in Porto and sailed every summer';
  let seen = 0;
  try {
    await stream(user.token, { sessionId, content, clientMessageId: 'p-1' }, (_e, hangUp) => {
      seen++;
      hangUp();
    });
    expect(seen).toBe(1);
    const where = { userId: user.id, role: 'ASSISTANT' } as const;
    expect(await t.services.prisma.message.count({ where })).toBe(0);
    await expect
      .poll(() => t.services.prisma.message.findFirst({ where }), { timeout: 15_000 })
      .toMatchObject({ content: REPLY });
  } finally {
    openrouter.setDeltaDelay(() => 0);
  }
  await t.drainJobs();
  const memories = await t.services.prisma.memory.findMany({ where: { userId: user.id } });
  expect(memories.map((m) => m.content)).toEqual(['User grew up in Porto']);
});
