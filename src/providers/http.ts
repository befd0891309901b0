import {
  type ClientRequest,
  Agent as HttpAgent,
  request as httpRequest,
  type IncomingMessage,
} from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { setTimeout as sleepFor } from 'node:timers/promises';
import type { Logger } from '../logger.js';

/** Error bodies can be whole HTML pages from a gateway; a prefix is enough to diagnose. */
const SNIPPET_CHARS = 300;

export interface RetryPolicy {
  /** Backoff ceiling of the first retry; it doubles per retry up to `capMs` (full jitter). */
  baseMs: number;
  capMs: number;
  /** A longer Retry-After is shortened to this: a chat turn cannot wait minutes. */
  maxRetryAfterMs: number;
  /** Injectable so tests neither wait nor depend on chance. Must reject when `signal` aborts. */
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  random: () => number;
}

export const defaultRetryPolicy: RetryPolicy = {
  baseMs: 250,
  capMs: 8_000,
  maxRetryAfterMs: 20_000,
  sleep: (ms, signal) => sleepFor(ms, undefined, { signal }),
  random: Math.random,
};

export type HttpFailureKind = 'status' | 'timeout' | 'network' | 'malformed' | 'aborted';

/** What a provider call finally failed with; messages never contain the API key. */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    message: string,
    readonly kind: HttpFailureKind,
    /** HTTP status when the server answered, else null. */
    readonly status: number | null,
    /** Whether the same call may succeed later (transient), not whether we retried. */
    readonly retryable: boolean,
    readonly attempts: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface PostJsonOptions {
  /** Names the provider in error messages, e.g. 'voyage'. */
  label: string;
  url: string;
  apiKey: string;
  body: unknown;
  headers?: Readonly<Record<string, string>>;
  /** Per attempt, including reading the body. */
  timeoutMs: number;
  /** Retries after the first attempt: at most `maxRetries + 1` requests. */
  maxRetries: number;
  /** The caller's cancellation: stops the current attempt and any further ones. */
  signal?: AbortSignal;
  logger: Logger;
  retry?: Partial<RetryPolicy>;
}

/**
 * Options of `postStream`. The answer must be a `text/event-stream`; `read` consumes it.
 * `timeoutMs` bounds each silence instead of the whole attempt: first the wait for the answer,
 * then the gap between body chunks, so a long reply is fine but a stalled one is not.
 */
export interface PostStreamOptions<T> extends PostJsonOptions {
  /**
   * Reads a 2xx body. Throw StreamBodyError when the body is unusable. Call `commit` before
   * passing any of the body on: from then on no failure is retried, since another attempt would
   * repeat what the caller already has.
   */
  read: (chunks: AsyncIterable<Uint8Array>, commit: () => void) => Promise<T>;
}

/** Thrown by a `read` callback for a body that arrived but cannot be used (retryable). */
export class StreamBodyError extends Error {
  override readonly name = 'StreamBodyError';
}

interface Failure {
  kind: HttpFailureKind;
  status: number | null;
  retryable: boolean;
  detail: string;
  retryAfterMs?: number;
  /** Part of the answer already reached the caller: transient or not, do not try again. */
  final?: boolean;
  cause?: unknown;
}

type Outcome<T> = { value: T } | { failure: Failure };

/**
 * POSTs JSON and returns the parsed JSON answer. Retries 408, 429, 5xx, network errors,
 * timeouts and malformed JSON in a 2xx answer (a body cut short by a proxy is transient; each
 * such retry uses the same budget as the others). Other 4xx fail at once.
 */
export function postJson(options: PostJsonOptions): Promise<unknown> {
  const payload = JSON.stringify(options.body);
  return withRetries(options, () => attemptOnce(options, payload));
}

/**
 * POSTs JSON and streams the answer through `options.read`, returning what it returns. Retries
 * like `postJson` until `read` commits; a body that fails before that counts as malformed.
 */
export function postStream<T>(options: PostStreamOptions<T>): Promise<T> {
  const payload = JSON.stringify(options.body);
  return withRetries(options, () => streamOnce(options, payload));
}

async function withRetries<T>(
  options: PostJsonOptions,
  attemptOnce: () => Promise<Outcome<T>>,
): Promise<T> {
  const policy: RetryPolicy = { ...defaultRetryPolicy, ...options.retry };
  for (let attempt = 1; ; attempt++) {
    const outcome = await attemptOnce();
    if (!('failure' in outcome)) return outcome.value;
    const { failure } = outcome;
    const retry = failure.retryable && !failure.final && attempt <= options.maxRetries;
    if (!retry || options.signal?.aborted) throw toHttpError(options.label, failure, attempt);
    const delayMs =
      failure.retryAfterMs === undefined
        ? Math.floor(policy.random() * Math.min(policy.capMs, policy.baseMs * 2 ** (attempt - 1)))
        : Math.min(failure.retryAfterMs, policy.maxRetryAfterMs);
    options.logger.warn(
      { label: options.label, attempt, kind: failure.kind, status: failure.status, delayMs },
      `${options.label} request failed, retrying: ${failure.detail}`,
    );
    try {
      await policy.sleep(delayMs, options.signal);
    } catch (cause) {
      throw toHttpError(options.label, abortedFailure(cause), attempt);
    }
  }
}

/**
 * The providers' HTTP client: node:http(s) on keep-alive connections, not `fetch`. undici's
 * WHATWG fetch builds a Request, a Headers list, web streams and AbortSignals for every call,
 * which was the largest single part of a turn's server CPU (two calls per turn: ~17 % of the
 * profile's busy time); this does the same POST with a fraction of the work. Idle connections
 * are closed after IDLE_SOCKET_MS, or a second before the server's announced
 * `Keep-Alive: timeout` (Node's agent reads the hint), so a reused connection is rarely one
 * the server is closing. No `accept-encoding` is sent, so answers come uncompressed, as
 * `fetch` would hand them over after decoding.
 */
const IDLE_SOCKET_MS = 30_000;
const agents = {
  'http:': new HttpAgent({ keepAlive: true, timeout: IDLE_SOCKET_MS }),
  'https:': new HttpsAgent({ keepAlive: true, timeout: IDLE_SOCKET_MS }),
};

/** The answer's status and headers; its body is read from `body`. */
interface Answer {
  status: number;
  ok: boolean;
  header(name: string): string | null;
  body: IncomingMessage;
}

/** One POST in flight. `abort` ends it (waiting for the answer or reading its body). */
interface Call {
  answer: Promise<Answer>;
  abort(reason: unknown): void;
}

function request(o: PostJsonOptions, payload: string, accept: string): Call {
  const url = new URL(o.url);
  const agent = url.protocol === 'https:' ? agents['https:'] : agents['http:'];
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  let req: ClientRequest | undefined;
  let res: IncomingMessage | undefined;
  let aborted: { reason: unknown } | undefined;
  const answer = new Promise<Answer>((resolve, reject) => {
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      reject(new Error(`unsupported URL scheme ${url.protocol}`));
      return;
    }
    req = send(
      url,
      {
        method: 'POST',
        agent,
        headers: {
          ...o.headers,
          authorization: `Bearer ${o.apiKey}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
          accept,
        },
      },
      (answered) => {
        res = answered;
        // Read errors reach the reader through its iteration; this keeps one that happens
        // before anyone reads (an abort) from being an uncaught 'error' event.
        answered.on('error', () => {});
        const status = answered.statusCode ?? 0;
        resolve({
          status,
          ok: status >= 200 && status < 300,
          header: (name) => {
            const value = answered.headers[name.toLowerCase()];
            return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value;
          },
          body: answered,
        });
      },
    );
    // `on`, not `once`: a second error event must not go unhandled (a no-op once settled).
    req.on('error', reject);
    req.end(payload);
  });
  return {
    answer,
    abort(reason) {
      if (aborted) return;
      aborted = { reason };
      const error = reason instanceof Error ? reason : new Error(String(reason));
      res?.destroy(error);
      req?.destroy(error);
    },
  };
}

/** The whole body as text; rejects if the connection fails (or is aborted) before its end. */
async function readText(body: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of body as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

/** Ends `call` when the caller's signal aborts; returns the undo. */
function abortOn(signal: AbortSignal | undefined, call: Call): () => void {
  if (!signal) return () => {};
  const onAbort = () => call.abort(signal.reason);
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  return () => signal.removeEventListener('abort', onAbort);
}

async function attemptOnce(o: PostJsonOptions, payload: string): Promise<Outcome<unknown>> {
  const call = request(o, payload, 'application/json');
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    call.abort(new Error(`timed out after ${o.timeoutMs} ms`));
  }, o.timeoutMs);
  const release = abortOn(o.signal, call);
  let response: Answer;
  let text: string;
  try {
    response = await call.answer;
    text = await readText(response.body);
  } catch (cause) {
    return {
      failure: transportFailure(o, cause, timedOut ? `timed out after ${o.timeoutMs} ms` : null),
    };
  } finally {
    clearTimeout(timer);
    release();
  }
  if (!response.ok) return { failure: statusFailure(response, text, o.apiKey) };
  try {
    return { value: JSON.parse(text) as unknown };
  } catch {
    const detail = `malformed JSON: ${snippet(redact(text, o.apiKey))}`;
    return { failure: makeFailure('malformed', response.status, true, detail) };
  }
}

async function streamOnce<T>(o: PostStreamOptions<T>, payload: string): Promise<Outcome<T>> {
  const call = request(o, payload, 'text/event-stream');
  let idle = false;
  let whole = false;
  const timer = setTimeout(() => {
    idle = true;
    call.abort(new Error(`no data for ${o.timeoutMs} ms`));
  }, o.timeoutMs);
  // Keep-alive comments reset the idle timer, so a stalled model could hold a turn for ever:
  // a whole stream gets at most STREAM_DEADLINE_FACTOR idle timeouts.
  const deadline = setTimeout(() => {
    whole = true;
    call.abort(new Error(`stream longer than ${o.timeoutMs * STREAM_DEADLINE_FACTOR} ms`));
  }, o.timeoutMs * STREAM_DEADLINE_FACTOR);
  const release = abortOn(o.signal, call);
  const timedOut = () =>
    idle
      ? `no data for ${o.timeoutMs} ms`
      : whole
        ? `stream longer than ${o.timeoutMs * STREAM_DEADLINE_FACTOR} ms`
        : null;
  let committed = false;
  try {
    let response: Answer;
    try {
      response = await call.answer;
      if (!response.ok) {
        return { failure: statusFailure(response, await readText(response.body), o.apiKey) };
      }
      const type = response.header('content-type') ?? '';
      if (!type.includes('text/event-stream')) {
        const body = snippet(redact(await readText(response.body), o.apiKey));
        const detail = `expected an event stream, got ${type || 'no content type'}: ${body}`;
        return { failure: makeFailure('malformed', response.status, true, detail) };
      }
    } catch (cause) {
      return { failure: transportFailure(o, cause, timedOut()) };
    }
    const chunks = bodyChunks(response.body, () => timer.refresh());
    try {
      const commit = () => {
        committed = true;
      };
      return { value: await o.read(chunks, commit) };
    } catch (cause) {
      let failure: Failure;
      if (cause instanceof StreamBodyError) {
        const detail = snippet(redact(cause.message, o.apiKey));
        failure = { ...makeFailure('malformed', response.status, true, detail), cause };
      } else if (cause instanceof BodyReadError) {
        failure = transportFailure(o, cause.cause, timedOut());
      } else {
        throw cause; // raised by the reader or its caller (onDelta), not by the provider
      }
      return { failure: { ...failure, final: committed } };
    }
  } finally {
    clearTimeout(timer);
    clearTimeout(deadline);
    release();
  }
}

/** A streamed answer may last this many idle timeouts in total (OPENROUTER_TIMEOUT_MS). */
const STREAM_DEADLINE_FACTOR = 4;

/** Tells a failed body read apart from errors the `read` callback raises itself. */
class BodyReadError extends Error {}

async function* bodyChunks(body: IncomingMessage, onChunk: () => void): AsyncGenerator<Uint8Array> {
  const iterator = (body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  try {
    for (;;) {
      const next = await iterator.next().catch((cause: unknown) => {
        throw new BodyReadError('body read failed', { cause });
      });
      if (next.done) return;
      onChunk();
      yield next.value;
    }
  } finally {
    // A reader that stops early ([DONE] seen, a bad chunk) must not leave the socket open.
    if (!body.complete) body.destroy();
  }
}

function transportFailure(o: PostJsonOptions, cause: unknown, timedOut: string | null): Failure {
  if (o.signal?.aborted) return abortedFailure(o.signal.reason);
  if (timedOut !== null) return makeFailure('timeout', null, true, timedOut);
  // Some errors put the useful part (ECONNREFUSED…) in `cause` (undici's "fetch failed").
  const inner = cause instanceof Error && cause.cause instanceof Error ? cause.cause : cause;
  const message = inner instanceof Error ? inner.message : String(inner);
  return { ...makeFailure('network', null, true, redact(message, o.apiKey)), cause };
}

function statusFailure(response: Answer, text: string, apiKey: string): Failure {
  const { status } = response;
  const retryable = status === 408 || status === 429 || status >= 500;
  const detail = `HTTP ${status}: ${snippet(redact(text, apiKey))}`;
  const retryAfterMs = retryable ? parseRetryAfter(response.header('retry-after')) : undefined;
  return { ...makeFailure('status', status, retryable, detail), retryAfterMs };
}

function makeFailure(
  kind: HttpFailureKind,
  status: number | null,
  retryable: boolean,
  detail: string,
): Failure {
  return { kind, status, retryable, detail };
}

/** Retryable: the caller gave up (client gone, shutdown), the call itself may well succeed. */
function abortedFailure(cause: unknown): Failure {
  return { kind: 'aborted', status: null, retryable: true, detail: 'aborted by caller', cause };
}

function toHttpError(label: string, f: Failure, attempts: number): HttpError {
  const message = `${label}: ${f.detail} (${attempts} attempt${attempts === 1 ? '' : 's'})`;
  return new HttpError(message, f.kind, f.status, f.retryable, attempts, { cause: f.cause });
}

/** Retry-After is either delay-seconds or an HTTP date; undefined when absent or unparsable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function snippet(text: string): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length > SNIPPET_CHARS ? `${oneLine.slice(0, SNIPPET_CHARS)}…` : oneLine;
}

/** Some gateways echo the credentials they rejected; never pass that on. */
function redact(text: string, secret: string): string {
  return secret ? text.split(secret).join('[redacted]') : text;
}
