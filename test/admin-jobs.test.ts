import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codesOf, createTestContext, dataOf, type TestContext } from './helpers/app.js';
import { personaIds, send, startChat } from './helpers/chat.js';

let t: TestContext;
let admin: { id: string; token: string };
let user: { id: string; token: string };

const DEAD_JOBS = /* GraphQL */ `
  query { deadJobs(first: 10) { edges { node { id kind status attempts maxAttempts lastError } } } }`;
const RETRY_ALL = /* GraphQL */ `mutation { retryDeadJobs { count } }`;
const RETRY_ONE = /* GraphQL */ `
  mutation($id: ID!) { retryJob(input: { jobId: $id }) { id status attempts } }`;
const DISCARD = /* GraphQL */ `mutation($id: ID!) { discardJob(input: { jobId: $id }) { jobId } }`;
const PROVIDERS = /* GraphQL */ `
  query { providerInfo { embeddingsProvider embeddingModel chatProvider extractionProvider } }`;

interface DeadJobs {
  deadJobs: {
    edges: { node: { id: string; status: string; attempts: number; lastError: string } }[];
  };
}

/** Makes the next `n` extraction attempts fail, as a broken extractor would. */
function breakExtractor(n: number) {
  const extractor = t.services.extractor;
  const original = extractor.extract.bind(extractor);
  let left = n;
  extractor.extract = async (input) => {
    if (left-- > 0) throw new Error('extractor unavailable');
    return original(input);
  };
}

beforeAll(async () => {
  t = await createTestContext({ env: { JOB_MAX_ATTEMPTS: '2' } });
  admin = await t.newUser({ admin: true });
  user = await t.newUser();
});
afterAll(() => t?.close());

describe('admins see and repair dead jobs', () => {
  it('a job that fails every attempt ends DEAD with its reason, and a retry completes it', async () => {
    const { sessionId } = await startChat(
      t,
      user.token,
      (await personaIds(t, user.token)).mira as string,
    );
    await send(t, user.token, sessionId, 'I collect vintage maps');
    breakExtractor(2);
    await t.drainJobs();

    const dead = dataOf(await t.gql<DeadJobs>(DEAD_JOBS, {}, admin.token)).deadJobs.edges;
    expect(dead).toHaveLength(1);
    expect(dead[0]?.node).toMatchObject({ status: 'DEAD', attempts: 2 });
    expect(dead[0]?.node.lastError).toMatch(/extractor unavailable/);

    expect(dataOf(await t.gql(RETRY_ALL, {}, admin.token))).toEqual({
      retryDeadJobs: { count: 1 },
    });
    await t.drainJobs();
    expect(dataOf(await t.gql<DeadJobs>(DEAD_JOBS, {}, admin.token)).deadJobs.edges).toEqual([]);
    const memories = await t.services.prisma.memory.findMany({ where: { userId: user.id } });
    expect(memories.map((m) => m.content).join()).toMatch(/vintage maps/);
  });

  it('retries or discards one dead job by id', async () => {
    const { sessionId } = await startChat(
      t,
      user.token,
      (await personaIds(t, user.token)).rook as string,
    );
    await send(t, user.token, sessionId, 'I play the cello');
    await send(t, user.token, sessionId, 'I speak Finnish');
    breakExtractor(4);
    await t.drainJobs();
    const [a, b] = dataOf(await t.gql<DeadJobs>(DEAD_JOBS, {}, admin.token)).deadJobs.edges;
    if (!a || !b) throw new Error('expected two dead jobs');

    const retried = dataOf(await t.gql(RETRY_ONE, { id: a.node.id }, admin.token));
    expect(retried).toEqual({ retryJob: { id: a.node.id, status: 'PENDING', attempts: 0 } });
    expect(dataOf(await t.gql(DISCARD, { id: b.node.id }, admin.token))).toEqual({
      discardJob: { jobId: b.node.id },
    });
    await t.drainJobs();
    expect(await t.services.prisma.job.count({ where: { status: 'DEAD' } })).toBe(0);
    // Neither can be retried again: one is done, the other gone.
    expect(codesOf(await t.gql(RETRY_ONE, { id: a.node.id }, admin.token))).toEqual(['NOT_FOUND']);
    expect(codesOf(await t.gql(DISCARD, { id: b.node.id }, admin.token))).toEqual(['NOT_FOUND']);
  });

  it('shows the configured providers to admins', async () => {
    expect(dataOf(await t.gql(PROVIDERS, {}, admin.token))).toEqual({
      providerInfo: {
        embeddingsProvider: 'local',
        embeddingModel: 'use-lite-512',
        chatProvider: 'offline',
        extractionProvider: 'offline',
      },
    });
  });

  it('refuses all of it to non-admins', async () => {
    for (const [query, vars] of [
      [DEAD_JOBS, {}],
      [RETRY_ALL, {}],
      [PROVIDERS, {}],
      [RETRY_ONE, { id: 'Sm9iOjAwMDAwMDAwLTAwMDAtNDAwMC04MDAwLTAwMDAwMDAwMDAwMA==' }],
    ] as const) {
      const res = await t.gql(query, vars, user.token);
      expect(res.data ?? null).toBeNull();
      expect(codesOf(res)).toEqual(['FORBIDDEN']);
    }
  });
});
