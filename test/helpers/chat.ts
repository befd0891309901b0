import { randomUUID } from 'node:crypto';
import { dataOf, type TestContext } from './app.js';
import { PERSONAS, SEND_MESSAGE, type SendMessageData, START_CHAT } from './operations.js';

export async function personaIds(t: TestContext, token: string): Promise<Record<string, string>> {
  const data = dataOf(
    await t.gql<{ personas: { edges: { node: { id: string; slug: string } }[] } }>(
      PERSONAS,
      {},
      token,
    ),
  );
  return Object.fromEntries(data.personas.edges.map((e) => [e.node.slug, e.node.id]));
}

export async function startChat(t: TestContext, token: string, personaId: string) {
  const data = dataOf(
    await t.gql<{ startChat: { session: { id: string }; instance: { id: string } } }>(
      START_CHAT,
      { personaId },
      token,
    ),
  );
  return { sessionId: data.startChat.session.id, instanceId: data.startChat.instance.id };
}

export async function send(
  t: TestContext,
  token: string,
  sessionId: string,
  content: string,
  clientMessageId: string = randomUUID(),
) {
  return dataOf(
    await t.gql<SendMessageData>(SEND_MESSAGE, { sessionId, content, clientMessageId }, token),
  ).sendMessage;
}
