import { encodeGlobalID } from '@pothos/plugin-relay';
import type { TestContext } from './helpers/app.js';
import { personaIds, send, startChat } from './helpers/chat.js';

/** Fixtures of test/hostile-ids.test.ts: the ID arguments of the schema, bad ids, an owner with data. */

export interface IdArgument {
  name: string;
  /** The Node type the argument names; null: any (node). */
  type: string | null;
  /** Who calls it: admin-only arguments are exercised as an admin. */
  role: 'user' | 'admin';
  /** An operation whose `$id` is the argument. */
  query: string;
}

// name | Node type (* = any) | caller | operation
const TABLE = `
node(id)                                 | *               | user  | query($id: ID!) { node(id: $id) { id } }
memory(id)                               | Memory          | user  | query($id: ID!) { memory(id: $id) { id content } }
chatSession(id)                          | ChatSession     | user  | query($id: ID!) { chatSession(id: $id) { id messages { edges { node { content } } } } }
personaInstance(id)                      | PersonaInstance | user  | query($id: ID!) { personaInstance(id: $id) { id } }
relationshipMemories(instanceId)         | PersonaInstance | user  | query($id: ID!) { relationshipMemories(instanceId: $id) { edges { node { content } } } }
relationshipMemories(instanceId, search) | PersonaInstance | user  | query($id: ID!) { relationshipMemories(instanceId: $id, search: "pilot jokes") { edges { node { content } } } }
startChat(personaId)                     | Persona         | user  | mutation($id: ID!) { startChat(input: { personaId: $id }) { session { id } } }
sendMessage(sessionId)                   | ChatSession     | user  | mutation($id: ID!) { sendMessage(input: { sessionId: $id, content: "hi", clientMessageId: "hostile-id" }) { reply { content } } }
sendMessageStream(sessionId)             | ChatSession     | user  | subscription($id: ID!) { sendMessageStream(input: { sessionId: $id, content: "hi", clientMessageId: "hostile-stream" }) { ... on ReplyDone { turn { reply { content } } } } }
updateMemory(memoryId)                   | Memory          | user  | mutation($id: ID!) { updateMemory(input: { memoryId: $id, category: FACT }) { memory { content } } }
deleteMemory(memoryId)                   | Memory          | user  | mutation($id: ID!) { deleteMemory(input: { memoryId: $id }) { deletedMemoryId } }
forgetMemories(instanceId)               | PersonaInstance | user  | mutation($id: ID!) { forgetMemories(input: { instanceId: $id }) { deletedCount } }
forgetMemories(userId)                   | User            | user  | mutation($id: ID!) { forgetMemories(input: { userId: $id, everything: true }) { deletedCount } }
rememberMemory(instanceId)               | PersonaInstance | user  | mutation($id: ID!) { rememberMemory(input: { layer: RELATIONSHIP, instanceId: $id, content: "Likes tea" }) { memory { content } } }
rememberMemory(supersedes)               | Memory          | user  | mutation($id: ID!) { rememberMemory(input: { layer: PROFILE, supersedes: $id, content: "Likes tea" }) { memory { content } } }
rememberMemory(userId)                   | User            | user  | mutation($id: ID!) { rememberMemory(input: { layer: PROFILE, userId: $id, content: "Likes tea" }) { memory { content } } }
memoryEvents(userId)                     | User            | user  | subscription($id: ID!) { memoryEvents(userId: $id) { kind } }
profileMemories(userId)                  | User            | admin | query($id: ID!) { profileMemories(userId: $id) { edges { node { content } } } }
exportMemories(userId)                   | User            | admin | query($id: ID!) { exportMemories(userId: $id) }
deleteChatSession(sessionId)             | ChatSession     | user  | mutation($id: ID!) { deleteChatSession(input: { sessionId: $id }) { deletedMessages } }
eraseUser(userId)                        | User            | admin | mutation($id: ID!) { eraseUser(input: { userId: $id }) { userId } }
followUps(userId)                        | User            | admin | query($id: ID!) { followUps(userId: $id) { edges { node { id memory { content } } } } }
dismissFollowUp(followUpId)              | FollowUp        | user  | mutation($id: ID!) { dismissFollowUp(input: { followUpId: $id }) { followUp { state } } }
memoryStats(userId)                      | User            | admin | query($id: ID!) { memoryStats(userId: $id) { profile { total } } }
userUsage(userId)                        | User            | admin | query($id: ID!) { userUsage(userId: $id) { today { requests } } }
retryJob(jobId)                          | Job             | admin | mutation($id: ID!) { retryJob(input: { jobId: $id }) { id } }
discardJob(jobId)                        | Job             | admin | mutation($id: ID!) { discardJob(input: { jobId: $id }) { jobId } }
updatePersona(personaId)                 | Persona         | admin | mutation($id: ID!) { updatePersona(input: { personaId: $id, name: "Renamed" }) { persona { id } } }
archivePersona(personaId)                | Persona         | admin | mutation($id: ID!) { archivePersona(input: { personaId: $id }) { persona { id } } }
unarchivePersona(personaId)              | Persona         | admin | mutation($id: ID!) { unarchivePersona(input: { personaId: $id }) { persona { id } } }
`;

/** Every argument of the schema that takes an ID (schema.graphql), with an operation using it. */
export const ID_ARGUMENTS: IdArgument[] = TABLE.trim()
  .split('\n')
  .map((line) => {
    const [name = '', type = '', role = '', query = ''] = line.split('|').map((s) => s.trim());
    return { name, type: type === '*' ? null : type, role: role as IdArgument['role'], query };
  });

export const UUID = '00000000-0000-4000-8000-000000000000';
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

/** Ids wrong whatever the expected type: [what, id]. */
export const UNTYPED_BAD_IDS: [string, string][] = [
  ['garbage', 'garbage'],
  ['empty', ''],
  ['10 kB', 'x'.repeat(10_000)],
  ['not base64', '!!!$$$'],
  ['SQL', "' OR 1=1 --"],
  ['a bare UUID of no type', UUID],
  ['an unknown type', encodeGlobalID('Nope', UUID)],
  ['a type that is not a Node', encodeGlobalID('PageInfo', UUID)],
];

/** Ids wrong for `type` in particular: base64 of "Type:" with everything but a UUID. */
export const typedBadIds = (type: string): [string, string][] => [
  [`${type}: with a non-UUID`, encodeGlobalID(type, 'not-a-uuid')],
  [`${type}: with nothing`, b64(`${type}:`)],
  [`${type}: with SQL`, encodeGlobalID(type, "1' OR '1'='1")],
  [`${type}: 10 kB`, encodeGlobalID(type, 'a'.repeat(10_000))],
  [`${type}: UUID plus junk`, encodeGlobalID(type, `${UUID}|x`)],
];

export interface Fixtures {
  owner: { id: string; token: string };
  stranger: { id: string; token: string };
  admin: { id: string; token: string };
  /** A real id of each Node type, the owner's where rows have owners. */
  real: Record<string, string>;
  /** The owner's message and memory texts, which no one else may ever see. */
  secrets: string[];
  /** What the owner has and the shared tables hold, to check that nothing changed. */
  snapshot(): Promise<unknown>;
}

/** An owner with a chat, memories of both layers and a job; a stranger; an admin. */
export async function ownerWithData(t: TestContext): Promise<Fixtures> {
  const [owner, stranger, admin] = [
    await t.newUser(),
    await t.newUser(),
    await t.newUser({ admin: true }),
  ];
  const persona = (await personaIds(t, owner.token)).mira as string;
  const chat = await startChat(t, owner.token, persona);
  const line = "I'm a pilot called Zeppelina and we laughed about your jokes";
  await send(t, owner.token, chat.sessionId, line);
  // A plan with a date: a follow-up thread.
  await send(t, owner.token, chat.sessionId, 'I have a job interview at Zeppelin Air tomorrow');
  await t.drainJobs();
  const prisma = t.services.prisma;
  const mine = { where: { userId: owner.id } };
  const memories = await prisma.memory.findMany(mine);
  const messages = await prisma.message.findMany(mine);
  const job = await prisma.job.findFirstOrThrow(mine);
  const followUp = await prisma.followUp.findFirstOrThrow(mine);
  if (!memories.some((m) => m.instanceId === null) || !memories.some((m) => m.instanceId)) {
    throw new Error('setup wrote no memories of both layers');
  }
  return {
    owner,
    stranger,
    admin,
    real: {
      User: encodeGlobalID('User', owner.id),
      Persona: persona,
      PersonaInstance: chat.instanceId,
      ChatSession: chat.sessionId,
      Message: encodeGlobalID('Message', messages[0]?.id ?? ''),
      Memory: encodeGlobalID('Memory', memories[0]?.id ?? ''),
      Job: encodeGlobalID('Job', job.id),
      FollowUp: encodeGlobalID('FollowUp', followUp.id),
    },
    secrets: [...messages, ...memories].map((row) => row.content),
    snapshot: async () => ({
      memories: await prisma.memory.findMany({ ...mine, orderBy: { id: 'asc' } }),
      messages: await prisma.message.count(),
      sessions: await prisma.chatSession.count(),
      personas: await prisma.persona.findMany({ orderBy: { id: 'asc' } }),
      jobs: await prisma.job.findMany({ orderBy: { id: 'asc' } }),
      followUps: await prisma.followUp.findMany({ orderBy: { id: 'asc' } }),
    }),
  };
}
