import { encodeGlobalID } from '@pothos/plugin-relay';
import {
  type GraphQLObjectType,
  getNamedType,
  isInterfaceType,
  isLeafType,
  isNonNullType,
} from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { schema } from '../src/graphql/schema.js';
import { codesOf, createTestContext, type TestContext } from './helpers/app.js';
import { personaIds, send, startChat } from './helpers/chat.js';

/**
 * node(id) must apply exactly the authorization of direct access, for every type that
 * implements Node. The types come from the schema itself: a new Node type without a fixture
 * here fails the first test instead of slipping through unchecked.
 */
type Access = 'owner' | 'users' | 'admins';
interface Fixture {
  id: string;
  /** owner: the owning user and admins; users: any signed-in user; admins: admins only. */
  access: Access;
}

let t: TestContext;
let owner: { id: string; token: string };
let stranger: { id: string; token: string };
let admin: { id: string; token: string };
const fixtures: Record<string, Fixture[]> = {};

const nodeTypes = (): GraphQLObjectType[] => {
  const node = schema.getType('Node');
  if (!isInterfaceType(node)) throw new Error('the schema has no Node interface');
  return [...schema.getImplementations(node).objects];
};

/** Every leaf field callable without arguments: a leak in any of them would show. */
function selection(type: GraphQLObjectType): string {
  const leaves = Object.values(type.getFields())
    .filter((f) => isLeafType(getNamedType(f.type)))
    .filter((f) => f.args.every((a) => !isNonNullType(a.type)))
    .map((f) => f.name);
  return `query Node($id: ID!) { node(id: $id) { __typename ... on ${type.name} { ${leaves.join(' ')} } } }`;
}

beforeAll(async () => {
  t = await createTestContext();
  owner = await t.newUser();
  stranger = await t.newUser();
  admin = await t.newUser({ admin: true });

  // Everything user A owns, made the way a client makes it.
  const personas = await personaIds(t, owner.token);
  const mira = personas.mira as string;
  const chat = await startChat(t, owner.token, mira);
  const turn = await send(
    t,
    owner.token,
    chat.sessionId,
    "I'm a pilot and we laughed about your jokes",
  );
  await send(t, owner.token, chat.sessionId, 'I have a job interview tomorrow');
  await t.drainJobs();
  const prisma = t.services.prisma;
  const memories = await prisma.memory.findMany({ where: { userId: owner.id } });
  const profile = memories.find((m) => m.instanceId === null);
  const relationship = memories.find((m) => m.instanceId !== null);
  const job = await prisma.job.findFirst({ where: { userId: owner.id } });
  const followUp = await prisma.followUp.findFirstOrThrow({ where: { userId: owner.id } });
  if (!profile || !relationship || !job) throw new Error('setup wrote no memories or job');

  const add = (type: string, id: string, access: Access) => {
    fixtures[type] = [...(fixtures[type] ?? []), { id, access }];
  };
  add('User', encodeGlobalID('User', owner.id), 'owner');
  add('Persona', mira, 'users');
  add('PersonaInstance', chat.instanceId, 'owner');
  add('ChatSession', chat.sessionId, 'owner');
  add('Message', turn.userMessage.id, 'owner');
  add('Message', turn.reply.id, 'owner');
  add('Memory', encodeGlobalID('Memory', profile.id), 'owner');
  add('Memory', encodeGlobalID('Memory', relationship.id), 'owner');
  add('Job', encodeGlobalID('Job', job.id), 'admins');
  add('FollowUp', encodeGlobalID('FollowUp', followUp.id), 'owner');
});
afterAll(() => t?.close());

const allowed = (access: Access, who: 'owner' | 'stranger' | 'admin') =>
  who === 'admin' || access === 'users' || (access === 'owner' && who === 'owner');

describe('node(id) for every Node type', () => {
  it('has a fixture for each type implementing Node', () => {
    const missing = nodeTypes()
      .map((type) => type.name)
      .filter((name) => !fixtures[name]);
    expect(missing, 'add a fixture above for each new Node type').toEqual([]);
  });

  it.each(['owner', 'stranger', 'admin'] as const)('as the %s', async (who) => {
    const token = { owner, stranger, admin }[who].token;
    for (const type of nodeTypes()) {
      for (const { id, access } of fixtures[type.name] ?? []) {
        const what = `${type.name} ${id} (${access}) as ${who}`;
        const res = await t.gql<{ node: Record<string, unknown> | null }>(
          selection(type),
          { id },
          token,
        );
        if (allowed(access, who)) {
          expect(res.data?.node, what).toMatchObject({ __typename: type.name, id });
          // Only admin-only fields may be refused, each on its own (the node stays readable).
          for (const error of res.errors ?? []) {
            expect(who, `${what}: ${error.message}`).not.toBe('admin');
            expect(error.path?.length, what).toBe(2);
            expect(error.extensions?.code, what).toBe('FORBIDDEN');
          }
        } else {
          // Exactly what an id that does not exist gets (issue 13): null, no error.
          expect(res, what).toEqual({ data: { node: null } });
        }
      }
    }
  });

  it('is UNAUTHENTICATED without a token, for every type', async () => {
    for (const type of nodeTypes()) {
      for (const { id } of fixtures[type.name] ?? []) {
        const res = await t.gql(selection(type), { id });
        expect(res.data?.node ?? null, type.name).toBeNull();
        expect(codesOf(res), type.name).toEqual(['UNAUTHENTICATED']);
      }
    }
  });
});
