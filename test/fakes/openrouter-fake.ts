import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';

/**
 * A local stand-in for OpenRouter's OpenAI-compatible POST /api/v1/chat/completions, so the
 * real client's retries, timeouts and model fallbacks are exercised in tests. With
 * `"stream": true` it answers server-sent events as OpenRouter does (see streamReply).
 *
 * Every fault applies before the answer starts, except the stream-only ones, which a request
 * without `stream` ignores: 'stream-cut' sends the first delta and destroys the socket,
 * 'stream-error' sends the first delta, then an error event (finish_reason "error") and [DONE].
 * For a streamed request 'malformed-json' is a first event that is not JSON, and
 * 'empty-content' a stream that ends normally without any content.
 */
export type OpenRouterFault =
  | '429'
  | '500'
  | '503'
  | 'hang'
  | 'malformed-json'
  | 'empty-content'
  | 'unknown-model'
  | 'stream-cut'
  | 'stream-error';

const STREAM_FAULTS: readonly OpenRouterFault[] = ['stream-cut', 'stream-error'];

export interface OpenRouterFaults {
  /** Served first, one per request, before any random fault. */
  queue?: OpenRouterFault[];
  /** Chance (0..1) that a request without a queued fault gets one of `kinds`. */
  probability?: number;
  kinds?: OpenRouterFault[];
  seed?: number;
  /** The Retry-After header sent with 429s; '0' keeps tests fast. */
  retryAfter?: string;
  /** Models that always answer 404, as OpenRouter does for a model with no endpoints. */
  unknownModels?: string[];
  /**
   * Draw each request's fault from its own stream, seeded by `seed`, this key and how many
   * earlier requests had the same key, instead of from one stream in arrival order. Concurrent
   * clients arrive in a different order on every run; keyed draws keep a seeded run the same.
   */
  keyOf?: ((body: ChatBody) => string) | null;
}

// Loose: OpenRouter accepts many more parameters (provider routing, top_p, …).
const bodySchema = z.looseObject({
  model: z.string().min(1),
  messages: z
    .array(z.object({ role: z.enum(['system', 'user', 'assistant']), content: z.string() }))
    .min(1),
  temperature: z.number().min(0).max(2).optional(),
  max_tokens: z.number().int().positive().optional(),
  response_format: z.object({ type: z.enum(['text', 'json_object']) }).optional(),
  stream: z.boolean().optional(),
});
export type ChatBody = z.infer<typeof bodySchema>;

/** Scripts the assistant's reply to a request. */
export type Responder = (body: ChatBody) => string;

/**
 * Milliseconds to hold a request before answering it (0: answer at once; Infinity: never, until
 * the client goes away or the fake closes), or a promise to hold it until (a gate the test opens
 * when it is ready, instead of a delay that races the machine's speed).
 */
export type Delay = (body: ChatBody) => number | Promise<unknown>;

/** Milliseconds to wait before streaming content delta number `index` (from 0; Infinity: never). */
export type DeltaDelay = (body: ChatBody, index: number) => number;

export interface OpenRouterRequest {
  headers: IncomingHttpHeaders;
  /** Null when the body was rejected with a 400. */
  body: ChatBody | null;
  fault: OpenRouterFault | null;
}

export interface OpenRouterFake {
  /** Base URL to configure the client with (ends in /api/v1). */
  url: string;
  apiKey: string;
  requests: OpenRouterRequest[];
  readonly faultsServed: number;
  setFaults(faults: OpenRouterFaults): void;
  setResponder(responder: Responder): void;
  /** Keeps requests in flight for a while, e.g. so a test can kill a worker mid-job. */
  setDelay(delay: Delay): void;
  /** Slows a streamed reply after its headers, e.g. so a test can disconnect mid-stream. */
  setDeltaDelay(delay: DeltaDelay): void;
  close(): Promise<void>;
}

/** Echoes the last user message, so a test can see its prompt arrived. */
export const echoResponder: Responder = (body) =>
  `echo: ${body.messages.findLast((m) => m.role === 'user')?.content ?? ''}`;

export async function startOpenRouterFake(
  options: { apiKey?: string; responder?: Responder; delay?: Delay; deltaDelay?: DeltaDelay } = {},
): Promise<OpenRouterFake> {
  const apiKey = options.apiKey ?? 'openrouter-test-key';
  const requests: OpenRouterRequest[] = [];
  let responder = options.responder ?? echoResponder;
  let delay: Delay = options.delay ?? (() => 0);
  let deltaDelay: DeltaDelay = options.deltaDelay ?? (() => 0);
  let faults: Required<OpenRouterFaults> = defaults({});
  let random = mulberry32(0);
  let served = 0;

  const server = createServer(async (req, res) => {
    const raw = await readBody(req).catch(() => null);
    const record: OpenRouterRequest = { headers: req.headers, body: null, fault: null };
    requests.push(record);
    if (raw === null) return; // the client went away mid-request
    if (req.method !== 'POST' || req.url !== '/api/v1/chat/completions') {
      return sendError(res, 404, 'Not found');
    }
    if (req.headers.authorization !== `Bearer ${apiKey}`) {
      // Echoes the credential, as some gateways do: the client must redact it.
      return sendError(res, 401, `No auth credentials found: ${req.headers.authorization ?? ''}`);
    }
    const parsed = bodySchema.safeParse(safeJson(raw));
    if (!parsed.success) return sendError(res, 400, parsed.error.message);
    const body = parsed.data;
    record.body = body;
    const drawn = faults.unknownModels.includes(body.model) ? 'unknown-model' : nextFault(body);
    const fault = drawn && STREAM_FAULTS.includes(drawn) && !body.stream ? null : drawn;
    record.fault = fault;
    if (fault === 'hang') return; // never answer; close() destroys the socket
    if (fault === '429') return sendError(res, 429, 'Rate limit exceeded', faults.retryAfter);
    if (fault === '500' || fault === '503') return sendError(res, Number(fault), 'Upstream error');
    if (fault === 'unknown-model')
      return sendError(res, 404, `No endpoints found for ${body.model}.`);
    if (fault === 'malformed-json' && !body.stream) {
      return sendRaw(res, 200, '{"id":"gen-1","choices":[{"mess');
    }
    const wait = delay(body);
    if (typeof wait !== 'number' || wait > 0) {
      await hold(wait, res);
      if (req.socket.destroyed) return; // the client gave up or died meanwhile
    }
    const content = fault === 'empty-content' ? '' : responder(body);
    const promptTokens = body.messages.reduce((n, m) => n + words(m.content), 0);
    served += 1;
    const usage = {
      prompt_tokens: promptTokens,
      completion_tokens: words(content),
      total_tokens: promptTokens + words(content),
    };
    if (body.stream) {
      const pace = (index: number) => deltaDelay(body, index);
      return streamReply(res, { id: `gen-${served}`, body, content, usage, fault, pace });
    }
    return sendRaw(
      res,
      200,
      JSON.stringify({
        id: `gen-${served}`,
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model: body.model,
        choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
        usage,
      }),
    );
  });

  function nextFault(body: ChatBody): OpenRouterFault | null {
    const queued = faults.queue.shift();
    if (queued) return queued;
    const draw = faults.keyOf ? keyedDraw(faults.keyOf(body)) : random;
    if (faults.kinds.length === 0 || draw() >= faults.probability) return null;
    return faults.kinds[Math.floor(draw() * faults.kinds.length)] ?? null;
  }

  /** Per-key request counts for `keyOf` draws. */
  const seen = new Map<string, number>();
  function keyedDraw(key: string): () => number {
    const n = seen.get(key) ?? 0;
    seen.set(key, n + 1);
    return mulberry32(fnv1a(`${faults.seed}:${n}:${key}`));
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/api/v1`,
    apiKey,
    requests,
    get faultsServed() {
      return requests.filter((r) => r.fault !== null).length;
    },
    setFaults(next) {
      faults = defaults(next);
      random = mulberry32(faults.seed);
      seen.clear();
    },
    setResponder(next) {
      responder = next;
    },
    setDelay(next) {
      delay = next;
    },
    setDeltaDelay(next) {
      deltaDelay = next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Hanging and keep-alive sockets would otherwise hold close() open.
        server.closeAllConnections();
      }),
  };
}

function defaults(f: OpenRouterFaults): Required<OpenRouterFaults> {
  return {
    queue: [...(f.queue ?? [])],
    probability: f.probability ?? 0,
    kinds: f.kinds ?? [],
    seed: f.seed ?? 1,
    retryAfter: f.retryAfter ?? '0',
    unknownModels: f.unknownModels ?? [],
    keyOf: f.keyOf ?? null,
  };
}

function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

function words(text: string): number {
  return text.split(/\s+/).filter(Boolean).length;
}

/** Small seeded PRNG so random fault runs can be replayed. */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function readBody(req: AsyncIterable<Buffer>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

function safeJson(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return undefined;
  }
}

/** OpenRouter's error envelope: {error: {code, message}}. */
function sendError(res: ServerResponse, status: number, message: string, retryAfter?: string) {
  if (retryAfter !== undefined) res.setHeader('retry-after', retryAfter);
  sendRaw(res, status, JSON.stringify({ error: { code: status, message } }));
}

function sendRaw(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(body);
}

/**
 * Waits `ms` (or until the promise settles), or until the response closes when `ms` is Infinity
 * (setTimeout would turn a delay beyond 2^31-1 ms into 1 ms). A true hang, unlike a long delay, never races a client timeout.
 */
function hold(ms: number | Promise<unknown>, res: ServerResponse): Promise<unknown> {
  if (typeof ms === 'number' && Number.isFinite(ms)) return sleep(ms);
  if (res.destroyed || res.writableFinished) return Promise.resolve();
  const closed = new Promise((resolve) => res.once('close', resolve));
  return typeof ms === 'number' ? closed : Promise.race([ms, closed]);
}

interface StreamPlan {
  id: string;
  body: ChatBody;
  content: string;
  usage: object;
  fault: OpenRouterFault | null;
  pace: (index: number) => number;
}

/**
 * OpenRouter's stream: a keep-alive comment, one chunk per word (each flushed on its own), a
 * finish chunk, a usage chunk with no choices, then [DONE].
 */
async function streamReply(res: ServerResponse, plan: StreamPlan): Promise<void> {
  const { id, body, fault } = plan;
  const send = (choices: unknown[], extra: object = {}) => {
    const chunk = { id, object: 'chat.completion.chunk', model: body.model, choices, ...extra };
    return new Promise<void>((resolve) => {
      res.write(`data: ${JSON.stringify(chunk)}\n\n`, () => resolve());
    });
  };
  const choice = (delta: object, finish: string | null = null) => [
    { index: 0, delta, finish_reason: finish },
  ];

  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.write(': OPENROUTER PROCESSING\n\n');
  if (fault === 'malformed-json') {
    res.end('data: {"id":"gen-1","choices":[{"del\n\n');
    return;
  }
  const pieces = plan.content.match(/\s*\S+|\s+$/g) ?? [];
  for (const [index, piece] of pieces.entries()) {
    const wait = plan.pace(index);
    if (wait > 0) await hold(wait, res);
    if (res.destroyed) return; // the client went away
    await send(choice(index === 0 ? { role: 'assistant', content: piece } : { content: piece }));
    if (fault === 'stream-cut') {
      res.destroy();
      return;
    }
    if (fault === 'stream-error') {
      const error = { code: 502, message: 'Provider returned error' };
      await send(choice({ content: '' }, 'error'), { error });
      res.end('data: [DONE]\n\n');
      return;
    }
  }
  await send(choice({}, 'stop'));
  await send([], { usage: plan.usage });
  res.end('data: [DONE]\n\n');
}
