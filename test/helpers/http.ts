import { type IncomingHttpHeaders, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'vitest';
import type { App } from '../../src/app.js';
import { createHttpServer } from '../../src/http.js';
import type { GraphQLResponse, TestContext } from './app.js';

/** Codes a hostile request may be answered with; INTERNAL_SERVER_ERROR is never one of them. */
export const CLIENT_CODES = [
  'BAD_USER_INPUT',
  'BAD_REQUEST',
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'NOT_FOUND',
  'CONFLICT',
  'RATE_LIMITED',
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'OPERATION_RESOLUTION_FAILURE',
  'PAYLOAD_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
];

/** Every error has a code a client can act on; none is a masked "Unexpected error.". */
export function expectCleanErrors(res: GraphQLResponse, what: string, codes = CLIENT_CODES) {
  for (const error of res.errors ?? []) {
    expect(codes, `${what}: ${error.message.slice(0, 200)}`).toContain(error.extensions?.code);
  }
}

/** The real node HTTP server around an app, on an ephemeral port of 127.0.0.1. */
export async function startHttpServer(t: TestContext, app: App = t.app) {
  const server: Server = createHttpServer({
    app,
    db: t.database.db,
    metrics: t.services.metrics,
    worker: null,
    maxBodyBytes: t.env.MAX_BODY_BYTES,
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export interface RawRequest {
  method: string;
  path: string;
  headers?: Record<string, string>;
  /** Several chunks are written one by one (chunked transfer without Content-Length). */
  body?: string | Buffer | Buffer[];
}

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** The body parsed as JSON, or null when it is empty or not JSON. */
  json: GraphQLResponse | null;
}

/**
 * A request written with node:http, so a test controls what fetch would not let it: the
 * method, raw bytes, a missing Content-Type, chunked bodies. A server that answers and closes
 * while the body is still being written (413) still yields its answer.
 */
export function rawRequest(port: number, r: RawRequest): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = request(
      { host: '127.0.0.1', port, method: r.method, path: r.path, headers: r.headers ?? {} },
      (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: GraphQLResponse | null = null;
          try {
            json = text ? (JSON.parse(text) as GraphQLResponse) : null;
          } catch {
            json = null;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      },
    );
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    if (Array.isArray(r.body)) {
      for (const chunk of r.body) req.write(chunk);
      req.end();
    } else {
      req.end(r.body);
    }
  });
}

/**
 * POSTs an operation through `app.fetch` and keeps the body text, to search it for leaks. A
 * subscription is read over SSE to its end: its events' errors are merged, with the last data.
 */
export async function postText(
  app: App,
  body: { query: string; variables?: Record<string, unknown> },
  token?: string,
): Promise<{ status: number; text: string; json: GraphQLResponse }> {
  const subscription = /^\s*subscription\b/.test(body.query);
  const res = await app.fetch('http://test/graphql', {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(subscription ? { accept: 'text/event-stream' } : {}),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!subscription) return { status: res.status, text, json: JSON.parse(text) as GraphQLResponse };
  const events = [...text.matchAll(/^event: next\ndata: (.*)$/gm)].map(
    (m) => JSON.parse(m[1] ?? '{}') as GraphQLResponse,
  );
  const errors = events.flatMap((e) => e.errors ?? []);
  const json: GraphQLResponse = { data: events.at(-1)?.data ?? null };
  if (errors.length) json.errors = errors;
  return { status: res.status, text, json };
}

/** `t.gql` for any operation, subscriptions included (see postText). */
export async function gqlAny(
  app: App,
  query: string,
  variables: Record<string, unknown>,
  token?: string,
): Promise<GraphQLResponse> {
  return (await postText(app, { query, variables }, token)).json;
}
