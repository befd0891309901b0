import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OfflineCompanion } from '../src/providers/llm/offline.js';
import type { ChatModel } from '../src/providers/llm/types.js';
import { createTestContext, dataOf, type TestContext } from './helpers/app.js';
import { personaIds, startChat } from './helpers/chat.js';
import { SEND_MESSAGE } from './helpers/operations.js';

const STREAM = /* GraphQL */ `
  subscription Stream($sessionId: ID!, $content: String!, $clientMessageId: String!) {
    sendMessageStream(
      input: { sessionId: $sessionId, content: $content, clientMessageId: $clientMessageId }
    ) {
      __typename
      ... on ReplyDelta { text }
      ... on ReplyDone {
        turn {
          userMessage { id content }
          reply { id content }
          recalled { profile { memory { content } } relationship { memory { content } } }
        }
      }
    }
  }
`;

interface StreamEvent {
  data?: {
    sendMessageStream: {
      __typename: 'ReplyDelta' | 'ReplyDone';
      text?: string;
      turn?: { userMessage: { id: string }; reply: { id: string; content: string } };
    };
  };
  errors?: { message: string; extensions?: { code?: string } }[];
}

/**
 * Controls when the model may go on: it streams its first piece, then waits for `open()`, so a
 * test can disconnect mid-reply. `fail` makes the model break after the first piece.
 */
function steppedModel() {
  const offline = new OfflineCompanion();
  let open!: () => void;
  let gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  const state = { hold: false, fail: false, calls: 0 };
  const model: ChatModel = {
    provider: 'offline',
    complete: (request) => {
      state.calls++;
      return offline.complete(request);
    },
    async stream(request, onDelta) {
      state.calls++;
      if (!state.hold && !state.fail) return offline.stream(request, onDelta);
      const completion = await offline.complete(request);
      const words = completion.content.split(/(?<= )/);
      onDelta(words[0] ?? '');
      if (state.hold) await gate;
      if (state.fail) throw new Error('model connection reset');
      for (const word of words.slice(1)) onDelta(word);
      return completion;
    },
  };
  return {
    model,
    state,
    open() {
      open();
      gate = new Promise<void>((resolve) => {
        open = resolve;
      });
    },
  };
}

let t: TestContext;
const stepped = steppedModel();

beforeAll(async () => {
  t = await createTestContext({ providers: { chat: stepped.model } });
});
afterAll(() => t.close());

/** POSTs the subscription; `accept` decides whether yoga may answer with a stream. */
function postStream(
  app: TestContext['app'],
  token: string | null,
  variables: Record<string, unknown>,
  options: { accept?: string; signal?: AbortSignal } = {},
) {
  return app.fetch('http://test/graphql', {
    method: 'POST',
    headers: {
      accept: options.accept ?? 'text/event-stream',
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query: STREAM, variables }),
    signal: options.signal,
  });
}

/** Opens the subscription over SSE and returns the events as they come. */
async function* subscribe(
  token: string | null,
  variables: Record<string, unknown>,
  signal?: AbortSignal,
): AsyncGenerator<StreamEvent> {
  const res = await postStream(t.app, token, variables, { signal });
  expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end = buffer.indexOf('\n\n');
    while (end >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      end = buffer.indexOf('\n\n');
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (event === 'complete') return;
      if (event === 'next' && data) yield JSON.parse(data) as StreamEvent;
    }
  }
}

async function collect(token: string | null, variables: Record<string, unknown>) {
  const events: StreamEvent[] = [];
  for await (const e of subscribe(token, variables)) events.push(e);
  return events;
}

async function chat(token: string) {
  const { mira } = await personaIds(t, token);
  return startChat(t, token, mira as string);
}

describe('sendMessageStream (GraphQL subscription over SSE)', () => {
  it('streams deltas, then the persisted turn, and enqueues extraction', async () => {
    const user = await t.newUser();
    const { sessionId } = await chat(user.token);
    const vars = { sessionId, content: "I'm a nurse from Lisbon", clientMessageId: randomUUID() };
    const events = await collect(user.token, vars);

    const kinds = events.map((e) => e.data?.sendMessageStream.__typename);
    expect(kinds.slice(0, -1).every((k) => k === 'ReplyDelta')).toBe(true);
    expect(kinds.length).toBeGreaterThanOrEqual(3);
    expect(kinds.at(-1)).toBe('ReplyDone');
    const text = events.map((e) => e.data?.sendMessageStream.text ?? '').join('');
    const turn = events.at(-1)?.data?.sendMessageStream.turn;
    expect(text).toBe(turn?.reply.content);
    expect(await t.services.prisma.job.count({ where: { userId: user.id } })).toBe(1);

    // Same clientMessageId: the same turn again, whether streamed or not.
    const again = await collect(user.token, vars);
    expect(again.map((e) => e.data?.sendMessageStream.__typename)).toEqual([
      'ReplyDelta',
      'ReplyDone',
    ]);
    expect(again[0]?.data?.sendMessageStream.text).toBe(turn?.reply.content);
    expect(again[1]?.data?.sendMessageStream.turn?.reply.id).toBe(turn?.reply.id);
    const viaMutation = dataOf(
      await t.gql<{ sendMessage: { reply: { id: string } } }>(SEND_MESSAGE, vars, user.token),
    );
    expect(viaMutation.sendMessage.reply.id).toBe(turn?.reply.id);
    expect(await t.services.prisma.message.count({ where: { userId: user.id } })).toBe(2);
  });

  it('finishes and persists the turn when the client disconnects mid-reply', async () => {
    const user = await t.newUser();
    const { sessionId } = await chat(user.token);
    const content = 'I grew up in Porto and I love sailing';
    const abort = new AbortController();
    stepped.state.hold = true;
    try {
      const stream = subscribe(
        user.token,
        { sessionId, content, clientMessageId: 'c-1' },
        abort.signal,
      );
      const first = await stream.next();
      expect(first.value?.data?.sendMessageStream.__typename).toBe('ReplyDelta');
      abort.abort();
      await stream.return(undefined);
      // The client is gone and the model is still mid-reply: nothing is answered yet.
      await new Promise((resolve) => setTimeout(resolve, 50));
      const where = { userId: user.id, role: 'ASSISTANT' } as const;
      expect(await t.services.prisma.message.count({ where })).toBe(0);
    } finally {
      stepped.state.hold = false;
      stepped.open();
    }
    await expect
      .poll(
        () => t.services.prisma.message.count({ where: { userId: user.id, role: 'ASSISTANT' } }),
        { timeout: 15_000 },
      )
      .toBe(1);
    expect(await t.services.prisma.job.count({ where: { userId: user.id } })).toBe(1);
    await t.drainJobs();
    const memories = await t.services.prisma.memory.findMany({ where: { userId: user.id } });
    expect(memories.map((m) => m.content).join(' | ')).toMatch(/Porto|sailing/);
  });

  it('a re-send while the turn still runs joins it: one model call, one reply, deltas add up', async () => {
    const user = await t.newUser();
    const { sessionId } = await chat(user.token);
    const vars = { sessionId, content: 'tell me a story', clientMessageId: 'c-join' };
    const abort = new AbortController();
    stepped.state.hold = true;
    const callsBefore = stepped.state.calls;
    let resent: Promise<StreamEvent[]>;
    let viaMutation: Promise<unknown>;
    try {
      const first = subscribe(user.token, vars, abort.signal);
      expect((await first.next()).value?.data?.sendMessageStream.__typename).toBe('ReplyDelta');
      abort.abort();
      await first.return(undefined);
      resent = collect(user.token, vars);
      viaMutation = t.gql(SEND_MESSAGE, vars, user.token);
      await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      stepped.state.hold = false;
      stepped.open();
    }
    const events = await resent;
    const done = events.at(-1)?.data?.sendMessageStream.turn;
    const text = events.map((e) => e.data?.sendMessageStream.text ?? '').join('');
    expect(text).toBe(done?.reply.content);
    const mutation = dataOf(
      (await viaMutation) as { data?: { sendMessage: { reply: { id: string } } } },
    );
    expect(mutation.sendMessage.reply.id).toBe(done?.reply.id);
    expect(stepped.state.calls - callsBefore).toBe(1);
    expect(await t.services.prisma.message.count({ where: { userId: user.id } })).toBe(2);
  });

  it('runs no turn when the client cannot take a stream (Accept: application/json → 406)', async () => {
    const user = await t.newUser();
    const { sessionId } = await chat(user.token);
    const variables = { sessionId, content: 'hi', clientMessageId: 'c-json' };
    const res = await postStream(t.app, user.token, variables, { accept: 'application/json' });
    expect(res.status).toBe(406);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await t.services.prisma.message.count({ where: { userId: user.id } })).toBe(0);
  });

  it('answers a model failure with SERVICE_UNAVAILABLE, keeps the message, and a retry works', async () => {
    const user = await t.newUser();
    const { sessionId } = await chat(user.token);
    const vars = { sessionId, content: 'hello again', clientMessageId: 'c-fail' };
    stepped.state.fail = true;
    let events: StreamEvent[];
    try {
      events = await collect(user.token, vars);
    } finally {
      stepped.state.fail = false;
    }
    expect(events.at(-1)?.errors?.[0]?.extensions?.code).toBe('SERVICE_UNAVAILABLE');
    expect(await t.services.prisma.message.count({ where: { userId: user.id } })).toBe(1);
    const retry = await collect(user.token, vars);
    expect(retry.at(-1)?.data?.sendMessageStream.__typename).toBe('ReplyDone');
    expect(await t.services.prisma.message.count({ where: { userId: user.id } })).toBe(2);
  });

  it('applies the same auth as sendMessage', async () => {
    const owner = await t.newUser();
    const stranger = await t.newUser();
    const { sessionId } = await chat(owner.token);
    const vars = { sessionId, content: 'hi', clientMessageId: randomUUID() };
    const anonymous = await collect(null, vars);
    expect(anonymous.at(-1)?.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    const foreign = await collect(stranger.token, vars);
    expect(foreign.at(-1)?.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const bad = await collect(owner.token, { ...vars, content: ' ' });
    expect(bad.at(-1)?.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(
      await t.services.prisma.message.count({ where: { userId: { in: [owner.id, stranger.id] } } }),
    ).toBe(0);
  });
});

describe('sendMessageStream limits', () => {
  let limited: TestContext;
  beforeAll(async () => {
    limited = await createTestContext({ env: { CHAT_TURNS_PER_MINUTE: '1' } });
  });
  afterAll(() => limited.close());

  it('shares the per-user turn rate limit with sendMessage', async () => {
    const user = await limited.newUser();
    const { mira } = await personaIds(limited, user.token);
    const { sessionId } = await startChat(limited, user.token, mira as string);
    dataOf(
      await limited.gql(
        SEND_MESSAGE,
        { sessionId, content: 'one', clientMessageId: 'a' },
        user.token,
      ),
    );
    const variables = { sessionId, content: 'two', clientMessageId: 'b' };
    const res = await postStream(limited.app, user.token, variables);
    const body = await res.text();
    expect(body).toContain('RATE_LIMITED');
    expect(body).toContain('retryAfterSeconds');
  });
});
