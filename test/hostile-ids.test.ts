import { isInterfaceType } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NODE_TYPES } from '../src/graphql/ids.js';
import { schema } from '../src/graphql/schema.js';
import { codesOf, createTestContext, type TestContext } from './helpers/app.js';
import { startChat } from './helpers/chat.js';
import { expectCleanErrors, gqlAny, postText } from './helpers/http.js';
import {
  type Fixtures,
  ID_ARGUMENTS,
  ownerWithData,
  typedBadIds,
  UNTYPED_BAD_IDS,
  UUID,
} from './hostile-fixtures.js';

/**
 * Ids everywhere they travel. Every argument that takes an ID, fed every way an id can be wrong: garbage, empty, 10 kB,
 * base64 of "Type:" with a non-UUID, a valid id of each other Node type, an unknown type. Each
 * is BAD_USER_INPUT before any query runs, and changes nothing. Then another user's real ids,
 * through every such argument and the other places ids travel (cursors, idempotency keys):
 * NOT_FOUND, FORBIDDEN or null, the owner's content never anywhere in the response body.
 * And crafted pagination cursors: BAD_USER_INPUT on every list.
 */
let t: TestContext;
let f: Fixtures;

beforeAll(async () => {
  t = await createTestContext();
  f = await ownerWithData(t);
});
afterAll(() => t?.close());

/** POSTs as the stranger; asserts no 5xx, no secret in the body, only refusals. */
async function asStranger(query: string, variables: Record<string, unknown>, what: string) {
  const res = await postText(t.app, { query, variables }, f.stranger.token);
  expect(res.status, what).toBeLessThan(500);
  for (const secret of f.secrets) expect(res.text, what).not.toContain(secret);
  expectCleanErrors(res.json, what, ['NOT_FOUND', 'FORBIDDEN']);
  expect(res.json.errors ?? res.json.data, `${what}: an answer`).toBeTruthy();
  return res.json;
}

// Another user's ids first: the malformed-id cases below must not be able to spoil them.
// Personas are shared; job ids reach only admin-only arguments (FORBIDDEN to anyone else).
const owned = ID_ARGUMENTS.filter((a) => a.type !== 'Persona');

describe.each(owned)("$name, another user's ids", (argument) => {
  it("refuses the owner's ids to a stranger and changes nothing", async () => {
    const before = await f.snapshot();
    const ids =
      argument.type === null
        ? Object.values(f.real)
        : [f.real[argument.type] as string, ...(argument.type === 'User' ? [f.owner.id] : [])];
    for (const id of ids) {
      const what = `${argument.name} with ${id}`;
      const json = await asStranger(argument.query, { id }, what);
      // Null everywhere (refused, or a nullable lookup finding nothing), but node(id) of the
      // shared persona.
      const values = Object.values(json.data ?? {});
      const shared = !json.errors && id === f.real.Persona;
      expect(values.every((v) => v === null) || shared, what).toBe(true);
    }
    expect(await f.snapshot()).toEqual(before);
  });
});

describe("the other places an owner's ids travel", () => {
  it("the owner's cursors page the stranger's own (empty) lists", async () => {
    const mine = await postText(
      t.app,
      {
        query: '{ viewer { sessions { edges { cursor } } } profileMemories { edges { cursor } } }',
      },
      f.owner.token,
    );
    const data = mine.json.data as {
      viewer: { sessions: { edges: { cursor: string }[] } };
      profileMemories: { edges: { cursor: string }[] };
    };
    const json = await asStranger(
      `query($s: String, $m: String) {
        viewer { sessions(after: $s) { edges { node { id } } } }
        profileMemories(after: $m) { edges { node { content } } } }`,
      {
        s: data.viewer.sessions.edges[0]?.cursor,
        m: data.profileMemories.edges[0]?.cursor,
      },
      'cursors',
    );
    expect(json.errors).toBeUndefined();
  });

  it("reusing the owner's clientMessageId starts the stranger's own turn", async () => {
    const own = await startChat(t, f.stranger.token, f.real.Persona as string);
    const ownerMessage = await t.services.prisma.message.findFirstOrThrow({
      where: { userId: f.owner.id, role: 'USER' },
    });
    const json = await asStranger(
      `mutation($s: ID!, $c: String!) {
        sendMessage(input: { sessionId: $s, content: "hello there", clientMessageId: $c }) {
          userMessage { content } reply { content } } }`,
      { s: own.sessionId, c: ownerMessage.clientMessageId },
      'clientMessageId',
    );
    expect(json.errors).toBeUndefined();
  });

  it("searching for the owner's words finds nothing of theirs", async () => {
    for (const search of f.secrets) {
      const json = await asStranger(
        'query($s: String) { profileMemories(search: $s) { edges { node { content } } } }',
        { s: search.slice(0, 500) },
        `search ${search}`,
      );
      expect(json.errors).toBeUndefined();
    }
  });
});

describe('crafted cursors', () => {
  // Before the malformed-id cases: one of their bugs (forgetMemories) can empty the fixtures.
  const cursor = (raw: string) => Buffer.from(raw).toString('base64url');
  const at = '2024-01-01T00:00:00.000Z';
  const CURSORS: [string, string][] = [
    [
      'a keyset cursor whose id is not a UUID',
      cursor(`k:${at}|------------------------------------`),
    ],
    ['a keyset cursor with SQL for an id', cursor(`k:${at}|' OR 1=1 --`)],
    [
      'a keyset cursor in year 0',
      cursor('k:0000-01-01T00:00:00.000Z|00000000-0000-4000-8000-000000000000'),
    ],
    [
      'a keyset cursor in year -271821',
      cursor('k:-271821-04-20T00:00:00.000Z|00000000-0000-4000-8000-000000000000'),
    ],
    [
      'a keyset cursor on February 30',
      cursor('k:2024-02-30T00:00:00.000Z|00000000-0000-4000-8000-000000000000'),
    ],
    ['an offset cursor of a million', cursor('o:1000000')],
    ['a negative offset cursor', cursor('o:-1')],
    ['a Pothos cursor with a non-UUID', cursor('GPC:S:not-a-uuid')],
    ['a Pothos cursor with JSON', cursor('GPC:J:[1,2]')],
  ];
  const LISTS: Record<string, string> = {
    profileMemories: 'query($c: String) { profileMemories(after: $c) { edges { cursor } } }',
    'profileMemories (search)':
      'query($c: String) { profileMemories(search: "pilot", after: $c) { edges { cursor } } }',
    'Memory.history':
      'query($memoryId: ID!, $c: String) { memory(id: $memoryId) { history(after: $c) { edges { cursor } } } }',
    'ChatSession.messages':
      'query($sessionId: ID!, $c: String) { chatSession(id: $sessionId) { messages(after: $c) { edges { cursor } } } }',
    'User.sessions': 'query($c: String) { viewer { sessions(after: $c) { edges { cursor } } } }',
    personas: 'query($c: String) { personas(after: $c) { edges { cursor } } }',
  };
  it.each(Object.entries(LISTS))('%s refuses each as BAD_USER_INPUT', async (list, query) => {
    for (const [what, c] of CURSORS) {
      const variables = { c, sessionId: f.real.ChatSession, memoryId: f.real.Memory };
      const res = await t.gql(query, variables, f.owner.token);
      expect.soft(codesOf(res), `${list}: ${what}`).toEqual(['BAD_USER_INPUT']);
    }
  });
});

describe('the Node types', () => {
  it('NODE_TYPES (the ids node(id) accepts) is every type implementing Node', () => {
    const node = schema.getType('Node');
    if (!isInterfaceType(node)) throw new Error('no Node interface');
    const types = schema.getImplementations(node).objects.map((type) => type.name);
    expect([...NODE_TYPES].sort()).toEqual(types.sort());
    expect(Object.keys(f.real).sort()).toEqual(types.sort());
  });

  it('every ID argument of the schema is in the table', () => {
    const named = new Set(ID_ARGUMENTS.map((a) => a.name.replace(/,.*\)$/, ')')));
    const missing: string[] = [];
    for (const root of [
      schema.getQueryType(),
      schema.getMutationType(),
      schema.getSubscriptionType(),
    ]) {
      for (const field of Object.values(root?.getFields() ?? {})) {
        const input = field.args
          .find((a) => a.name === 'input')
          ?.type.toString()
          .replace('!', '');
        const inputType = input ? schema.getType(input) : undefined;
        const argNames = [
          ...field.args.filter((a) => /^ID!?$/.test(a.type.toString())).map((a) => a.name),
          ...(inputType && 'getFields' in inputType
            ? Object.values(inputType.getFields())
                .filter((a) => /^ID!?$/.test(a.type.toString()))
                .map((a) => a.name)
            : []),
        ];
        for (const arg of argNames) {
          if (!named.has(`${field.name}(${arg})`)) missing.push(`${field.name}(${arg})`);
        }
      }
    }
    expect(missing).toEqual([]);
  });
});

describe.each(ID_ARGUMENTS)('$name, malformed ids', (argument) => {
  it('answers BAD_USER_INPUT to every malformed or mistyped id, and changes nothing', async () => {
    const token = argument.role === 'admin' ? f.admin.token : f.owner.token;
    const before = await f.snapshot();
    // Admin tools name users by their raw UUID too (parseUserId): not wrong there.
    const untyped = UNTYPED_BAD_IDS.filter(([, id]) => !(argument.type === 'User' && id === UUID));
    const otherTypes = Object.entries(f.real)
      .filter(([type]) => argument.type !== null && type !== argument.type)
      .map(([type, id]): [string, string] => [`a valid ${type} id`, id]);
    // "Type:" + junk for the argument's own type (every type for node); other types are covered
    // by their valid ids above.
    const typed = argument.type ? typedBadIds(argument.type) : [...NODE_TYPES].flatMap(typedBadIds);
    for (const [what, id] of [...untyped, ...typed, ...otherTypes]) {
      const res = await gqlAny(t.app, argument.query, { id }, token);
      expect.soft(codesOf(res), `${argument.name}: ${what}`).toEqual(['BAD_USER_INPUT']);
    }
    expect(await f.snapshot()).toEqual(before);
  });
});
