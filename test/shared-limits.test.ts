import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../src/auth/tokens.js';
import { startOpenRouterFake } from './fakes/openrouter-fake.js';
import { startVoyageFake } from './fakes/voyage-fake.js';
import { TEST_JWT_SECRET } from './helpers/app.js';
import { openTestDatabase, type TestDatabase, tier } from './helpers/database.js';
import { PERSONAS, SEND_MESSAGE, START_CHAT } from './helpers/operations.js';
import { fakeProviderEnv } from './helpers/providers.js';
import { type ServerProcess, startServerProcess, stopServerProcess } from './helpers/server.js';

/*
 * `fly deploy` starts two machines: the per-user limits must hold across server processes on
 * one database, not per process. Two real server processes, requests alternating between them.
 * Postgres tier: embedded PGlite is one process's database.
 */

describe.runIf(tier === 'postgres')('per-user limits across two server processes', () => {
  let database: TestDatabase;
  let servers: ServerProcess[] = [];
  const closers: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    const voyage = await startVoyageFake();
    const openrouter = await startOpenRouterFake({ responder: () => 'Nice to hear from you.' });
    closers.push(
      () => voyage.close(),
      () => openrouter.close(),
    );
    database = await openTestDatabase();
    closers.push(() => database.close());
    const env = {
      DATABASE_URL: database.url ?? '',
      ...fakeProviderEnv({ voyage, openrouter }),
      WORKER_ENABLED: 'false',
      CHAT_TURNS_PER_MINUTE: '4',
      CHAT_STARTS_PER_MINUTE: '3',
      MEMORY_EMBEDS_PER_MINUTE: '3',
    };
    // One after the other: the first one seeds the personas.
    servers.push(await startServerProcess(env));
    servers.push(await startServerProcess(env));
  }, 120_000);

  afterAll(async () => {
    for (const s of servers) await stopServerProcess(s);
    servers = [];
    for (const close of closers.reverse()) await close();
  });

  /**
   * Sends 2 × perMinute + 2 operations alternating between the two servers (per-process limits
   * would admit 2 × perMinute of them) and checks the shared bucket: the first perMinute pass,
   * and in all no more than perMinute plus what refilled while they ran (a busy machine may take
   * seconds per request, so the refill is counted, not assumed away).
   */
  async function expectSharedLimit(
    perMinute: number,
    op: (server: ServerProcess, i: number) => Promise<unknown>,
  ): Promise<number> {
    const n = 2 * perMinute + 2;
    const began = Date.now();
    const codes: unknown[] = [];
    for (let i = 0; i < n; i++) {
      const res = (await op(servers[i % 2] as ServerProcess, i)) as {
        errors?: { message?: string; extensions?: Record<string, unknown> }[];
      };
      const error = res.errors?.[0];
      codes.push(error?.extensions?.code ?? 'OK');
      if (error) {
        expect(error.extensions).toMatchObject({ code: 'RATE_LIMITED', retryable: true });
        const seconds = error.extensions?.retryAfterSeconds as number;
        expect(seconds).toBeGreaterThanOrEqual(1);
        expect(seconds).toBeLessThanOrEqual(60 / perMinute);
      }
    }
    const refilled = Math.floor(((Date.now() - began) * perMinute) / 60_000);
    const admitted = codes.filter((c) => c === 'OK').length;
    expect(codes.slice(0, perMinute)).toEqual(Array(perMinute).fill('OK'));
    expect(admitted).toBeLessThanOrEqual(perMinute + refilled);
    expect(codes).toContain('RATE_LIMITED');
    return admitted;
  }

  it('startChat, sendMessage and memory searches each allow the configured rate in total', async () => {
    const userId = randomUUID();
    const token = await mintToken({ secret: TEST_JWT_SECRET }, { sub: userId });
    const [a] = servers as [ServerProcess, ServerProcess];
    const personas = await a.gql<{ personas: { edges: { node: { id: string } }[] } }>(
      token,
      PERSONAS,
    );
    const personaId = personas.data?.personas.edges[0]?.node.id;

    let sessionId: string | undefined;
    await expectSharedLimit(3, async (server) => {
      const res = await server.gql<{ startChat: { session: { id: string } } }>(token, START_CHAT, {
        personaId,
      });
      sessionId ??= res.data?.startChat.session.id;
      return res;
    });

    const turns = await expectSharedLimit(4, (server, i) =>
      server.gql(token, SEND_MESSAGE, {
        sessionId,
        content: `hello number ${i}`,
        clientMessageId: randomUUID(),
      }),
    );
    // Only the admitted turns were stored.
    expect(await database.db.prisma.message.count({ where: { userId, role: 'USER' } })).toBe(turns);

    await expectSharedLimit(3, (server, i) =>
      server.gql(token, 'query($s: String) { profileMemories(search: $s) { edges { score } } }', {
        s: `what do I like ${i}`,
      }),
    );
  }, 90_000);
});
