import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendMessage } from '../src/chat/send-message.js';
import { isExtractionRequest } from './fakes/extraction.js';
import {
  type ChatBody,
  type OpenRouterFake,
  startOpenRouterFake,
} from './fakes/openrouter-fake.js';
import { startVoyageFake, type VoyageFake } from './fakes/voyage-fake.js';
import { createTestContext, dataOf, type TestContext } from './helpers/app.js';
import { personaIds, send, startChat } from './helpers/chat.js';
import { fakeProviderEnv } from './helpers/providers.js';

/**
 * Issue 18: the usage ledger holds what the providers reported. The real OpenRouter and Voyage
 * clients talk to the local fakes, which answer `usage` in the providers' wire format
 * (OpenRouter: prompt/completion tokens, in the final chunk when streamed; Voyage:
 * total_tokens); the rows must add up to exactly what the fakes reported.
 */

const CHAT_MODEL = 'acme/unpriced-chat';
const EXTRACTION_MODEL = 'openai/gpt-4o-mini';

// The fakes' own counting rules (test/fakes), i.e. the `usage` they sent.
const fakeWords = (text: string) => text.split(/\s+/).filter(Boolean).length;
const fakeVoyageTokens = (text: string) =>
  (text.toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? []).length;

function respond(body: ChatBody): string {
  if (!isExtractionRequest(body)) return 'Lovely to hear about your garden!';
  return JSON.stringify({
    memories: [
      { content: 'The user grows tomatoes', category: 'fact', layer: 'PROFILE', confidence: 0.9 },
    ],
  });
}

interface Row {
  kind: string;
  model: string;
  requests: bigint;
  input_tokens: bigint;
  output_tokens: bigint;
  estimated_requests: bigint;
}

let t: TestContext;
let voyage: VoyageFake;
let openrouter: OpenRouterFake;

beforeAll(async () => {
  voyage = await startVoyageFake();
  openrouter = await startOpenRouterFake({ responder: respond });
  t = await createTestContext({
    env: {
      ...fakeProviderEnv({ voyage, openrouter }),
      OPENROUTER_CHAT_MODEL: CHAT_MODEL,
      OPENROUTER_EXTRACTION_MODEL: EXTRACTION_MODEL,
      OPENROUTER_MAX_RETRIES: '0',
      VOYAGE_MAX_RETRIES: '0',
    },
  });
});

afterAll(async () => {
  await t?.close();
  await voyage?.close();
  await openrouter?.close();
});

const rowsOf = (userId: string) =>
  t.database.db.prisma.$queryRaw<Row[]>`
    SELECT kind, model, requests, input_tokens, output_tokens, estimated_requests
    FROM usage_ledger WHERE user_id = ${userId}::uuid ORDER BY kind, model`;

/** What the OpenRouter fake reported for the requests matching `pick`. */
function openrouterUsage(pick: (b: ChatBody) => boolean) {
  const bodies = openrouter.requests.flatMap((r) => (r.body && pick(r.body) ? [r.body] : []));
  return {
    requests: bodies.length,
    input: bodies.reduce((n, b) => n + b.messages.reduce((m, x) => m + fakeWords(x.content), 0), 0),
    output: bodies.reduce((n, b) => n + fakeWords(respond(b)), 0),
  };
}

function voyageUsage() {
  const bodies = voyage.requests.flatMap((r) => (r.body ? [r.body] : []));
  const inputs = bodies.flatMap((b) => (Array.isArray(b.input) ? b.input : [b.input]));
  return {
    requests: bodies.length,
    input: inputs.reduce((n, text) => n + fakeVoyageTokens(String(text)), 0),
  };
}

describe('usage ledger from the providers', () => {
  it('records chat, extraction and embedding tokens exactly as OpenRouter and Voyage reported them', async () => {
    const user = await t.newUser();
    const personas = await personaIds(t, user.token);
    const { sessionId } = await startChat(t, user.token, personas.mira ?? '');
    await send(t, user.token, sessionId, 'I grow tomatoes in my garden every summer');
    // A streamed reply: OpenRouter sends its usage in the final chunk.
    const raw = Buffer.from(sessionId, 'base64').toString().split(':')[1] ?? '';
    let streamed = '';
    await sendMessage(
      t.services,
      {
        userId: user.id,
        sessionId: raw,
        content: 'The basil is doing well too',
        clientMessageId: 's-1',
      },
      {
        onDelta: (d) => {
          streamed += d;
        },
      },
    );
    expect(streamed).toContain('garden');
    await t.drainJobs();

    const chat = openrouterUsage((b) => !isExtractionRequest(b));
    const extraction = openrouterUsage(isExtractionRequest);
    const embedding = voyageUsage();
    expect(chat.requests).toBe(2);
    expect(extraction.requests).toBe(2);
    const rows = await rowsOf(user.id);
    expect(
      rows.map((r) => ({
        ...r,
        requests: Number(r.requests),
        input_tokens: Number(r.input_tokens),
        output_tokens: Number(r.output_tokens),
        estimated_requests: Number(r.estimated_requests),
      })),
    ).toEqual([
      {
        kind: 'chat',
        model: CHAT_MODEL,
        requests: 2,
        input_tokens: chat.input,
        output_tokens: chat.output,
        estimated_requests: 0,
      },
      {
        kind: 'embedding',
        model: 'voyage-3-lite',
        requests: embedding.requests,
        input_tokens: embedding.input,
        output_tokens: 0,
        estimated_requests: 0,
      },
      {
        kind: 'extraction',
        model: EXTRACTION_MODEL,
        requests: 2,
        input_tokens: extraction.input,
        output_tokens: extraction.output,
        estimated_requests: 0,
      },
    ]);
    // Turn queries (2), each job's similar-memories query (2), the first job's new memory (1;
    // the second turn's answer repeats it, not from that turn, so nothing is embedded).
    expect(embedding.requests).toBe(5);

    // The API: priced models have a cost, the unpriced chat model's is unknown (null).
    const res = dataOf(
      await t.gql<{
        viewer: {
          usage: {
            today: {
              requests: number;
              estimatedCostUsd: number | null;
              unpricedTokens: number;
              kinds: {
                kind: string;
                requests: number;
                inputTokens: number;
                estimated: boolean;
                estimatedCostUsd: number | null;
              }[];
            };
            days: { day: string }[];
            chatBudget: unknown;
          };
        };
      }>(
        `{ viewer { usage { today { requests estimatedCostUsd unpricedTokens
             kinds { kind requests inputTokens estimated estimatedCostUsd } }
           days { day } chatBudget { exceeded } } } }`,
        {},
        user.token,
      ),
    );
    const today = res.viewer.usage.today;
    expect(today.requests).toBe(2 + 2 + 5);
    expect(today.estimatedCostUsd).toBeNull();
    expect(today.unpricedTokens).toBe(chat.input + chat.output);
    const byKind = Object.fromEntries(today.kinds.map((k) => [k.kind, k]));
    expect(byKind.CHAT).toMatchObject({ requests: 2, estimated: false, estimatedCostUsd: null });
    expect(byKind.EXTRACTION?.estimatedCostUsd).toBeCloseTo(
      (extraction.input * 0.15 + extraction.output * 0.6) / 1e6,
      12,
    );
    expect(byKind.EMBEDDING?.estimatedCostUsd).toBeCloseTo((embedding.input * 0.02) / 1e6, 12);
    expect(res.viewer.usage.days).toHaveLength(1);
    expect(res.viewer.usage.chatBudget).toBeNull();

    // Prometheus counters by kind and model.
    const metrics = await t.services.metrics.registry.getSingleMetricAsString(
      'companion_usage_tokens_total',
    );
    expect(metrics).toContain(
      `companion_usage_tokens_total{kind="chat",model="${CHAT_MODEL}",direction="input"} ${chat.input}`,
    );
    expect(metrics).toContain(
      `companion_usage_tokens_total{kind="embedding",model="voyage-3-lite",direction="input"} ${embedding.input}`,
    );
  });
});
