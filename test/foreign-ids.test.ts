import { randomUUID } from 'node:crypto';
import { encodeGlobalID } from '@pothos/plugin-relay';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/app.js';
import { createVerifier } from '../src/auth/tokens.js';
import { graphqlLimitsFrom } from '../src/composition.js';
import {
  createTestContext,
  dataOf,
  type GraphQLResponse,
  TEST_JWT_SECRET,
  type TestContext,
} from './helpers/app.js';
import { personaIds, send, startChat } from './helpers/chat.js';

/**
 * Issue 13, defects 5 and 6. A stranger asking for another user's row by id gets exactly the
 * answer a random id gets (node, memory, chatSession, personaInstance), so an answer never
 * confirms that an id exists; and such misses are not error-level log lines anyone could flood.
 */
let t: TestContext;
let app: TestContext['app'];
let owner: { id: string; token: string };
let stranger: { id: string; token: string };
let ids: Record<string, { type: string; id: string }>;
const logs: { level: number; msg: string }[] = [];

beforeAll(async () => {
  t = await createTestContext();
  // The same services with a logger the test reads (debug and up).
  const logger = pino({ level: 'debug' }, { write: (line: string) => logs.push(JSON.parse(line)) });
  app = createApp({
    services: { ...t.services, logger },
    verifyToken: createVerifier({ secret: TEST_JWT_SECRET, adminUserIds: [] }),
    production: false,
    limits: graphqlLimitsFrom(t.env),
  });
  owner = await t.newUser();
  stranger = await t.newUser();
  const personas = await personaIds(t, owner.token);
  const chat = await startChat(t, owner.token, personas.mira as string);
  const turn = await send(t, owner.token, chat.sessionId, "I'm a pilot and I love sailing");
  const job = await t.services.prisma.job.findFirstOrThrow({ select: { id: true } });
  await t.drainJobs();
  const memory = await t.services.prisma.memory.findFirstOrThrow({
    where: { userId: owner.id },
    select: { id: true },
  });
  ids = {
    session: { type: 'ChatSession', id: chat.sessionId },
    instance: { type: 'PersonaInstance', id: chat.instanceId },
    message: { type: 'Message', id: turn.userMessage.id },
    memory: { type: 'Memory', id: encodeGlobalID('Memory', memory.id) },
    user: { type: 'User', id: encodeGlobalID('User', owner.id) },
    job: { type: 'Job', id: encodeGlobalID('Job', job.id) },
  };
});
afterAll(() => t?.close());

async function gql(query: string, variables: Record<string, unknown>, token: string) {
  const res = await app.fetch('http://test/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  return { status: res.status, body: (await res.json()) as GraphQLResponse };
}

const NODE = 'query($id: ID!) { node(id: $id) { id } }';
const FIELDS: Record<string, string> = {
  memory: 'query($id: ID!) { memory(id: $id) { id content } }',
  session: 'query($id: ID!) { chatSession(id: $id) { id createdAt } }',
  instance: 'query($id: ID!) { personaInstance(id: $id) { id createdAt } }',
};

describe("another user's id answers like a random one", () => {
  it('node(id), for every owned type (and jobs, admin-only)', async () => {
    for (const [what, { type, id }] of Object.entries(ids)) {
      const foreign = await gql(NODE, { id }, stranger.token);
      const random = await gql(NODE, { id: encodeGlobalID(type, randomUUID()) }, stranger.token);
      expect(foreign, what).toEqual(random);
      expect(foreign.body, what).toEqual({ data: { node: null } });
    }
  });

  it('memory, chatSession and personaInstance', async () => {
    for (const [what, query] of Object.entries(FIELDS)) {
      const { type, id } = ids[what] as { type: string; id: string };
      const foreign = await gql(query, { id }, stranger.token);
      const random = await gql(query, { id: encodeGlobalID(type, randomUUID()) }, stranger.token);
      expect(foreign, what).toEqual(random);
      expect(Object.values(foreign.body.data ?? {}), what).toEqual([null]);
    }
  });

  it('while the owner (and an admin) still read each of them', async () => {
    const admin = await t.newUser({ admin: true });
    for (const [what, { id }] of Object.entries(ids)) {
      if (what !== 'job') {
        expect(dataOf((await gql(NODE, { id }, owner.token)).body).node, what).toEqual({ id });
      }
      expect(dataOf((await gql(NODE, { id }, admin.token)).body).node, what).toEqual({ id });
    }
    for (const [what, query] of Object.entries(FIELDS)) {
      const { id } = ids[what] as { id: string };
      const data = dataOf((await gql(query, { id }, owner.token)).body);
      expect(Object.values(data)[0], what).toMatchObject({ id });
    }
  });
});

describe('expected misses are not errors in the log', () => {
  it('node(id) and the by-id queries of missing rows log nothing at warn or above', async () => {
    logs.length = 0;
    for (const type of ['ChatSession', 'Memory', 'Message', 'Persona', 'User', 'Job']) {
      await gql(NODE, { id: encodeGlobalID(type, randomUUID()) }, stranger.token);
    }
    for (const [what, query] of Object.entries(FIELDS)) {
      const { type } = ids[what] as { type: string };
      await gql(query, { id: encodeGlobalID(type, randomUUID()) }, owner.token);
    }
    const operations = logs.filter((l) => l.msg === 'graphql operation');
    expect(operations.length).toBe(9);
    expect(logs.filter((l) => l.level >= 40)).toEqual([]);
  });

  it('the nil UUID is a miss like any other, not an error', async () => {
    logs.length = 0;
    await gql(
      NODE,
      { id: encodeGlobalID('Memory', '00000000-0000-0000-0000-000000000000') },
      stranger.token,
    );
    expect(logs.filter((l) => l.level >= 40)).toEqual([]);
  });
});
