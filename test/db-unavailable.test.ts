import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';
import { Prisma } from '@prisma/client';
import { describe, expect, it } from 'vitest';
import { isDatabaseUnavailable } from '../src/db/unavailable.js';

/** A port nothing listens on (bound, then closed). */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('isDatabaseUnavailable', () => {
  it('recognises database outages', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), {
      code: 'ECONNREFUSED',
    });
    const p1001 = new Prisma.PrismaClientKnownRequestError("Can't reach database server", {
      code: 'P1001',
      clientVersion: 'test',
    });
    const shutdown = Object.assign(new Error('terminating connection'), { code: '57P01' });
    for (const err of [refused, p1001, shutdown, new Error('Connection terminated unexpectedly')]) {
      expect(isDatabaseUnavailable(err), String(err)).toBe(true);
    }
  });

  it('does not mistake a provider that cannot be reached for the database', async () => {
    const port = await deadPort();
    const failure = await fetch(`http://127.0.0.1:${port}/v1/embeddings`).catch((e) => e);
    expect((failure as { cause?: { code?: string } }).cause?.code).toBe('ECONNREFUSED');
    expect(isDatabaseUnavailable(failure)).toBe(false);
    const wrapped = new Error('voyage: request failed', { cause: failure });
    expect(isDatabaseUnavailable(wrapped)).toBe(false);
    expect(
      isDatabaseUnavailable(
        new Prisma.PrismaClientKnownRequestError('unique', {
          code: 'P2002',
          clientVersion: 'test',
        }),
      ),
    ).toBe(false);
  });
});
