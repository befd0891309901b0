import { randomUUID } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import { decodeGlobalID, encodeGlobalID } from '@pothos/plugin-relay';
import type { PrismaClient } from '@prisma/client';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/app.js';
import { createVerifier, mintToken } from '../src/auth/tokens.js';
import { graphqlLimitsFrom } from '../src/composition.js';
import {
  createTestContext,
  dataOf,
  type GraphQLResponse,
  TEST_JWT_SECRET,
  type TestContext,
} from './helpers/app.js';

/**
 * N+1 guard: nested queries over 1 and over 10 parents must cost the same number of database
 * round trips: SQL statements reaching the driver (PGlite's or pg's `query`). Prisma operations
 * (a `$extends` query hook on the client the app uses) and rows read are logged beside them.
 */
let t: TestContext;
const counts = { operations: 0, statements: 0, rows: 0 };
let gql: (query: string, token: string) => Promise<GraphQLResponse>;
let stopCounting = () => {};

/**
 * Counts every statement and every row that reaches the database driver (PGlite or pg), by
 * wrapping `query` on their prototypes for this test file (vitest runs each file in its own
 * process). Returns the undo.
 */
function countStatements(): () => void {
  const undo: (() => void)[] = [];
  for (const proto of [PGlite.prototype, pg.Client.prototype] as object[]) {
    const original = Reflect.get(proto, 'query') as (this: unknown, ...args: unknown[]) => unknown;
    const counting = function (this: unknown, ...args: unknown[]) {
      counts.statements++;
      const countRows = (r: { rows?: unknown[] } | undefined) => {
        counts.rows += r?.rows?.length ?? 0;
      };
      // pg's Pool hands its clients a callback; Prisma's adapters await a promise.
      const callback = args.at(-1);
      if (typeof callback === 'function') {
        args[args.length - 1] = (err: unknown, r: { rows?: unknown[] } | undefined) => {
          countRows(r);
          return callback(err, r);
        };
      }
      const result = original.apply(this, args);
      if (result instanceof Promise) {
        result.then(countRows, () => {});
      }
      return result;
    };
    Object.defineProperty(proto, 'query', { value: counting, configurable: true, writable: true });
    undo.push(() =>
      Object.defineProperty(proto, 'query', {
        value: original,
        configurable: true,
        writable: true,
      }),
    );
  }
  return () => {
    for (const fn of undo) fn();
  };
}

/** A user with `n` persona instances, each with a session of 12 messages and 12 memories. */
async function userWith(n: number) {
  const prisma = t.services.prisma;
  const id = randomUUID();
  await prisma.user.create({ data: { id } });
  const instances: string[] = [];
  for (let i = 0; i < n; i++) {
    const persona = await prisma.persona.create({
      data: {
        slug: `p-${randomUUID()}`,
        name: `Persona ${i}`,
        description: 'd',
        greeting: 'g',
        systemPrompt: 's',
      },
    });
    const instance = await prisma.personaInstance.create({
      data: { userId: id, personaId: persona.id },
    });
    instances.push(instance.id);
    const session = await prisma.chatSession.create({
      data: { userId: id, instanceId: instance.id },
    });
    await prisma.message.createMany({
      data: Array.from({ length: 12 }, (_, k) => ({
        sessionId: session.id,
        userId: id,
        role: k % 2 === 0 ? ('USER' as const) : ('ASSISTANT' as const),
        content: `message ${k}`,
      })),
    });
    await prisma.memory.createMany({
      data: Array.from({ length: 12 }, (_, k) => ({
        userId: id,
        instanceId: instance.id,
        content: `memory ${k}`,
        contentHash: randomUUID(),
        category: 'EVENT' as const,
        embeddingModel: 'use-lite-512',
      })),
    });
  }
  return { id, instances, token: await mintToken({ secret: TEST_JWT_SECRET }, { sub: id }) };
}

const SESSIONS = /* GraphQL */ `
  query {
    viewer {
      sessions(first: 10) {
        edges { node {
          id createdAt
          instance { id persona { name } }
          messages(first: 10) { edges { node { id role content } } }
        } }
      }
    }
  }`;

const INSTANCES = /* GraphQL */ `
  query {
    viewer { instances(first: 10) { edges { node { id createdAt persona { id name slug } } } } }
  }`;

/** One aliased relationshipMemories field per instance, as a dashboard listing them would. */
const relationshipMemories = (instances: string[]) => `query {
  ${instances
    .map(
      (
        id,
        i,
      ) => `m${i}: relationshipMemories(instanceId: "${encodeGlobalID('PersonaInstance', id)}",
        first: 10) { edges { node { id content layer } } }`,
    )
    .join('\n')}
}`;

/** node(id) for each session, with its messages. */
const sessionNodes = (ids: string[]) => `query {
  ${ids
    .map(
      (id, i) => `s${i}: node(id: "${encodeGlobalID('ChatSession', id)}") {
        ... on ChatSession { id messages(first: 10) { edges { node { id content } } } }
      }`,
    )
    .join('\n')}
}`;

async function measure(query: string, token: string) {
  await gql(query, token); // warm: user provisioning and prepared statements are not the point
  counts.operations = 0;
  counts.statements = 0;
  counts.rows = 0;
  const res = await gql(query, token);
  dataOf(res);
  return { ...counts, data: res.data };
}

let one: Awaited<ReturnType<typeof userWith>>;
let ten: Awaited<ReturnType<typeof userWith>>;

beforeAll(async () => {
  t = await createTestContext();
  const counted = t.services.prisma.$extends({
    query: {
      async $allOperations({ args, query }) {
        counts.operations++;
        return query(args);
      },
    },
  });
  // The extended client has the same runtime surface; its type only differs in extension
  // bookkeeping.
  const services = { ...t.services, prisma: counted as unknown as PrismaClient };
  const app = createApp({
    services,
    verifyToken: createVerifier({ secret: TEST_JWT_SECRET, adminUserIds: [] }),
    production: false,
    limits: graphqlLimitsFrom(t.env),
  });
  gql = async (query, token) => {
    const res = await app.fetch('http://test/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query }),
    });
    return res.json() as Promise<GraphQLResponse>;
  };
  one = await userWith(1);
  ten = await userWith(10);
  stopCounting = countStatements();
});
afterAll(async () => {
  stopCounting();
  await t?.close();
});

const sessionIds = (userId: string) =>
  t.services.prisma.chatSession
    .findMany({ where: { userId }, select: { id: true } })
    .then((rows) => rows.map((r) => r.id));

describe('nested queries cost the same for 1 and for 10 parents', () => {
  const cases: [string, (u: typeof one) => Promise<string>, (data: unknown) => number][] = [
    [
      'viewer → sessions(first: 10) → instance → persona, messages(first: 10)',
      async () => SESSIONS,
      (d) => JSON.stringify(d).split('"role"').length - 1,
    ],
    [
      'viewer → instances(first: 10) → persona',
      async () => INSTANCES,
      (d) => JSON.stringify(d).split('"slug"').length - 1,
    ],
    [
      'relationshipMemories(first: 10) on each instance',
      async (u) => relationshipMemories(u.instances),
      (d) => JSON.stringify(d).split('"layer"').length - 1,
    ],
    [
      'node(id) on each session → messages(first: 10)',
      async (u) => sessionNodes(await sessionIds(u.id)),
      (d) => JSON.stringify(d).split('"content"').length - 1,
    ],
  ];

  it.each(cases)('%s', async (name, build, items) => {
    const small = await measure(await build(one), one.token);
    const large = await measure(await build(ten), ten.token);
    // The queries really did walk 10 times as many children.
    expect(items(large.data)).toBe(10 * items(small.data));
    console.info(
      `${name}: 1 parent → ${small.statements} SQL (${small.operations} Prisma operations, ` +
        `${small.rows} rows); 10 parents → ${large.statements} SQL (${large.operations} ` +
        `operations, ${large.rows} rows)`,
    );
    // SQL statements are the cost that matters: Prisma batches findUnique calls of one tick
    // into one statement, so its operation count may grow where the statements do not.
    expect(large.statements).toBe(small.statements);
  });
});

describe('nested pages read only their rows', () => {
  it('a long session costs no more rows than a short one in sessions → messages(first: 10)', async () => {
    const before = await measure(SESSIONS, ten.token);
    const [sessionId] = await sessionIds(ten.id);
    await t.services.prisma.message.createMany({
      data: Array.from({ length: 3000 }, (_, k) => ({
        sessionId: sessionId as string,
        userId: ten.id,
        role: 'USER' as const,
        content: `older message ${k}`,
        createdAt: new Date(Date.UTC(2020, 0, 1, 0, 0, k)),
      })),
    });
    const after = await measure(SESSIONS, ten.token);
    expect(after.statements).toBe(before.statements);
    expect(after.rows).toBe(before.rows);
  });
});

describe('a chat turn', () => {
  const send = (sessionId: string, clientMessageId: string) => /* GraphQL */ `mutation {
    sendMessage(input: { sessionId: "${encodeGlobalID('ChatSession', sessionId)}",
      content: "I adopted a kitten called Miso", clientMessageId: "${clientMessageId}" }) {
      userMessage { id content } reply { id content }
      recalled { profile { score } relationship { score } }
    }
  }`;
  const counted = async (query: string, token: string) => {
    counts.operations = 0;
    counts.statements = 0;
    counts.rows = 0;
    const res = await gql(query, token);
    return { statements: counts.statements, data: dataOf(res) };
  };

  it('a new turn costs at most 4 statements, its replay 3; all of it is stored', async () => {
    const [sessionId] = (await sessionIds(one.id)) as [string];
    await counted(send(sessionId, 'turn-warm'), one.token);
    const turn = await counted(send(sessionId, 'turn-counted'), one.token);
    const replay = await counted(send(sessionId, 'turn-counted'), one.token);
    console.info(`new turn: ${turn.statements} SQL; replay: ${replay.statements} SQL`);
    // The shared rate limit, the opening statement (session, persona, idempotency, history,
    // time), recall (both layers in one statement), the reply with its follow-up mark,
    // extraction job and usage-ledger row.
    expect(turn.statements).toBeLessThanOrEqual(4);
    // The rate limit, the opening statement (finds the answered turn), the recalled memories
    // (read only when the stored recall names any).
    expect(replay.statements).toBeLessThanOrEqual(3);
    expect(replay.data).toEqual(turn.data);

    const { sendMessage } = turn.data as { sendMessage: { reply: { id: string } } };
    const replyId = decodeGlobalID(sendMessage.reply.id).id;
    const reply = await t.services.prisma.message.findUniqueOrThrow({ where: { id: replyId } });
    expect(reply.role).toBe('ASSISTANT');
    expect(reply.recall).toEqual(
      expect.objectContaining({ profile: expect.any(Array), relationship: expect.any(Array) }),
    );
    const job = await t.services.prisma.job.findUniqueOrThrow({
      where: { dedupeKey: `extract:${replyId}` },
    });
    expect(job.payload).toEqual({ replyId });
    expect(job.userId).toBe(one.id);
  });
});
