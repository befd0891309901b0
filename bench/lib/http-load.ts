/**
 * A small bounded HTTP load loop (no autocannon here): `concurrency` workers, each sending its
 * next request as soon as the previous answered, over keep-alive node:http connections to
 * 127.0.0.1, for a fixed time. Latency is measured per request, client side.
 */
import { Agent, request } from 'node:http';

export interface Response {
  status: number;
  body: string;
}

export function makeClient(concurrency: number) {
  const agent = new Agent({
    keepAlive: true,
    maxSockets: concurrency,
    maxFreeSockets: concurrency,
  });
  function post(
    url: string,
    body: string,
    headers: Record<string, string> = {},
  ): Promise<Response> {
    return new Promise((resolve, reject) => {
      const u = new URL(url);
      const req = request(
        {
          agent,
          host: u.hostname,
          port: u.port,
          path: u.pathname,
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            ...headers,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
          );
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }
  return { post, close: () => agent.destroy() };
}

export interface LoadResult {
  concurrency: number;
  seconds: number;
  completed: number;
  errors: number;
  firstError?: string;
  latenciesMs: number[];
}

/**
 * Runs `concurrency` loops for `seconds` (after `warmupSeconds` of unrecorded traffic). `send(worker, n)`
 * performs one request and returns an error description, or null when the answer was right.
 */
export async function runLoad(options: {
  concurrency: number;
  seconds: number;
  warmupSeconds: number;
  send: (worker: number, n: number) => Promise<string | null>;
}): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let n = 0;
  const start = performance.now();
  const warmEnd = start + options.warmupSeconds * 1000;
  const end = warmEnd + options.seconds * 1000;
  const worker = async (w: number) => {
    while (performance.now() < end) {
      const t0 = performance.now();
      let err: string | null;
      try {
        err = await options.send(w, n++);
      } catch (e) {
        err = (e as Error).message;
      }
      const t1 = performance.now();
      if (t0 < warmEnd) continue;
      if (err) {
        errors += 1;
        firstError ??= err;
      } else {
        latencies.push(t1 - t0);
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, (_, w) => worker(w)));
  const seconds = (performance.now() - warmEnd) / 1000;
  return {
    concurrency: options.concurrency,
    seconds,
    completed: latencies.length,
    errors,
    firstError,
    latenciesMs: latencies,
  };
}
