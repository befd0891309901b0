import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';

/**
 * A local stand-in for the Voyage embeddings API (POST /v1/embeddings) speaking its wire
 * format, so the real client's batching, retries and validation are exercised in tests.
 */
export type VoyageFault = '429' | '500' | '503' | 'hang' | 'malformed-json' | 'wrong-dimension';

export interface VoyageFaults {
  /** Served first, one per request, before any random fault. */
  queue?: VoyageFault[];
  /** Chance (0..1) that a request without a queued fault gets one of `kinds`. */
  probability?: number;
  kinds?: VoyageFault[];
  seed?: number;
  /** The Retry-After header sent with 429s; '0' keeps tests fast. */
  retryAfter?: string;
  /**
   * Draw each request's fault from its own stream, seeded by `seed`, this key and how many
   * earlier requests had the same key, instead of from one stream in arrival order. Concurrent
   * clients arrive in a different order on every run; keyed draws keep a seeded run the same.
   */
  keyOf?: ((body: VoyageBody) => string) | null;
}

const bodySchema = z.strictObject({
  input: z.union([z.string(), z.array(z.string())]),
  model: z.string().min(1),
  input_type: z.enum(['query', 'document']).nullish(),
  truncation: z.boolean().optional(),
  output_dimension: z
    .union([z.literal(256), z.literal(512), z.literal(1024), z.literal(2048)])
    .optional(),
  output_dtype: z.literal('float').optional(),
  encoding_format: z.null().optional(),
});
export type VoyageBody = z.infer<typeof bodySchema>;

export interface VoyageRequest {
  headers: IncomingHttpHeaders;
  /** Null when the body was rejected with a 400. */
  body: VoyageBody | null;
  fault: VoyageFault | null;
}

export interface VoyageFake {
  /** Base URL to configure the client with (ends in /v1). */
  url: string;
  apiKey: string;
  requests: VoyageRequest[];
  readonly faultsServed: number;
  setFaults(faults: VoyageFaults): void;
  close(): Promise<void>;
}

const MAX_INPUTS = 128;

export async function startVoyageFake(
  options: { apiKey?: string; reverseData?: boolean } = {},
): Promise<VoyageFake> {
  const apiKey = options.apiKey ?? 'voyage-test-key';
  const requests: VoyageRequest[] = [];
  let faults: Required<VoyageFaults> = defaults({});
  let random = mulberry32(0);

  const server = createServer(async (req, res) => {
    const raw = await readBody(req).catch(() => null);
    const record: VoyageRequest = { headers: req.headers, body: null, fault: null };
    requests.push(record);
    if (raw === null) return; // the client went away mid-request
    if (req.method !== 'POST' || req.url !== '/v1/embeddings') {
      return send(res, 404, { detail: 'Not found' });
    }
    if (req.headers.authorization !== `Bearer ${apiKey}`) {
      // Echoes the credential, as some gateways do: the client must redact it.
      return send(res, 401, { detail: `Invalid API key: ${req.headers.authorization ?? ''}` });
    }
    const parsed = bodySchema.safeParse(safeJson(raw));
    if (!parsed.success) return send(res, 400, { detail: parsed.error.message });
    const body = parsed.data;
    const inputs = typeof body.input === 'string' ? [body.input] : body.input;
    if (inputs.length === 0 || inputs.length > MAX_INPUTS) {
      return send(res, 400, { detail: `input must hold 1 to ${MAX_INPUTS} texts` });
    }
    if (body.output_dimension !== undefined && !matryoshka(body.model)) {
      return send(res, 400, { detail: `output_dimension is not supported by ${body.model}` });
    }
    record.body = body;
    const fault = nextFault(body);
    record.fault = fault;
    if (fault === 'hang') return; // never answer; close() destroys the socket
    if (fault === '429') return send(res, 429, { detail: 'Rate limited' }, faults.retryAfter);
    if (fault === '500' || fault === '503') return send(res, Number(fault), { detail: 'Oops' });
    if (fault === 'malformed-json') return sendRaw(res, 200, '{"object":"list","data":[{"obj');
    const base = body.output_dimension ?? (body.model === 'voyage-3-lite' ? 512 : 1024);
    const dims = fault === 'wrong-dimension' ? base / 2 : base;
    const data = inputs.map((text, index) => ({
      object: 'embedding',
      embedding: fakeEmbedding(text, dims),
      index,
    }));
    const totalTokens = inputs.reduce((n, text) => n + tokens(text).length, 0);
    return send(res, 200, {
      object: 'list',
      data: options.reverseData ? data.reverse() : data,
      model: body.model,
      usage: { total_tokens: totalTokens },
    });
  });

  function nextFault(body: VoyageBody): VoyageFault | null {
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
    url: `http://127.0.0.1:${port}/v1`,
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
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Hanging and keep-alive sockets would otherwise hold close() open.
        server.closeAllConnections();
      }),
  };
}

function defaults(f: VoyageFaults): Required<VoyageFaults> {
  return {
    queue: [...(f.queue ?? [])],
    probability: f.probability ?? 0,
    kinds: f.kinds ?? [],
    seed: f.seed ?? 1,
    retryAfter: f.retryAfter ?? '0',
    keyOf: f.keyOf ?? null,
  };
}

function matryoshka(model: string): boolean {
  return /^voyage-(3\.5|4)(-|$)/.test(model) || ['voyage-3-large', 'voyage-code-3'].includes(model);
}

function tokens(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? [];
}

/**
 * Hashed bag of words, L2-normalised: deterministic, and texts sharing words get a high
 * cosine similarity, which is what recall and dedup tests need.
 */
export function fakeEmbedding(text: string, dims = 512): number[] {
  const vector = new Array<number>(dims).fill(0);
  for (const token of tokens(text)) {
    const hash = fnv1a(token);
    const slot = hash % dims;
    vector[slot] = (vector[slot] ?? 0) + (hash >>> 31 ? -1 : 1);
  }
  const norm = Math.hypot(...vector);
  if (norm === 0) return vector.map((_, i) => (i === 0 ? 1 : 0));
  return vector.map((x) => x / norm);
}

function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
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

function send(res: ServerResponse, status: number, body: unknown, retryAfter?: string): void {
  if (retryAfter !== undefined) res.setHeader('retry-after', retryAfter);
  sendRaw(res, status, JSON.stringify(body));
}

function sendRaw(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(body);
}
