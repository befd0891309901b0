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

interface Failure {
  kind: HttpFailureKind;
  status: number | null;
  retryable: boolean;
  detail: string;
  retryAfterMs?: number;
  cause?: unknown;
}

/**
 * POSTs JSON and returns the parsed JSON answer. Retries 408, 429, 5xx, network errors,
 * timeouts and malformed JSON in a 2xx answer (a body cut short by a proxy is transient; each
 * such retry uses the same budget as the others). Other 4xx fail at once.
 */
export async function postJson(options: PostJsonOptions): Promise<unknown> {
  const policy: RetryPolicy = { ...defaultRetryPolicy, ...options.retry };
  const payload = JSON.stringify(options.body);
  for (let attempt = 1; ; attempt++) {
    const outcome = await attemptOnce(options, payload);
    if (!('failure' in outcome)) return outcome.value;
    const { failure } = outcome;
    if (!failure.retryable || attempt > options.maxRetries || options.signal?.aborted) {
      throw toHttpError(options.label, failure, attempt);
    }
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

type Outcome = { value: unknown } | { failure: Failure };

async function attemptOnce(o: PostJsonOptions, payload: string): Promise<Outcome> {
  const timeout = AbortSignal.timeout(o.timeoutMs);
  const signal = o.signal ? AbortSignal.any([timeout, o.signal]) : timeout;
  const clean = (text: string) => redact(text, o.apiKey);
  let response: Response;
  let text: string;
  try {
    response = await fetch(o.url, {
      method: 'POST',
      headers: {
        ...o.headers,
        authorization: `Bearer ${o.apiKey}`,
        'content-type': 'application/json',
        accept: 'application/json',
      },
      body: payload,
      signal,
    });
    text = await response.text();
  } catch (cause) {
    if (o.signal?.aborted) return { failure: abortedFailure(o.signal.reason) };
    if (timeout.aborted) {
      return { failure: makeFailure('timeout', null, true, `timed out after ${o.timeoutMs} ms`) };
    }
    // undici reports "fetch failed" and puts the useful part (ECONNREFUSED…) in `cause`.
    const inner = cause instanceof Error && cause.cause instanceof Error ? cause.cause : cause;
    const message = inner instanceof Error ? inner.message : String(inner);
    return { failure: { ...makeFailure('network', null, true, clean(message)), cause } };
  }
  const { status } = response;
  if (!response.ok) {
    const retryable = status === 408 || status === 429 || status >= 500;
    const detail = `HTTP ${status}: ${snippet(clean(text))}`;
    const retryAfterMs = retryable
      ? parseRetryAfter(response.headers.get('retry-after'))
      : undefined;
    return { failure: { ...makeFailure('status', status, retryable, detail), retryAfterMs } };
  }
  try {
    return { value: JSON.parse(text) as unknown };
  } catch {
    return {
      failure: makeFailure('malformed', status, true, `malformed JSON: ${snippet(clean(text))}`),
    };
  }
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
