import { sendMessage, type Turn } from '../../chat/send-message.js';
import { startChat } from '../../chat/start-chat.js';
import { streamMessage, type TurnEvent } from '../../chat/stream-message.js';
import type { ScoredMemory } from '../../memory/store.js';
import { viewerOf } from '../auth.js';
import { builder } from '../builder.js';
import { parseGlobalId } from '../ids.js';
import { ChatSession } from './chat-session.js';
import { Memory } from './memory.js';
import { Message } from './message.js';
import { PersonaInstance } from './persona-instance.js';

const RecalledMemory = builder.objectRef<ScoredMemory>('RecalledMemory').implement({
  fields: (t) => ({
    memory: t.field({ type: Memory, resolve: (r) => r.memory }),
    score: t.exposeFloat('score', { description: 'Cosine similarity to the message, -1..1.' }),
  }),
});

const Recall = builder.objectRef<Turn['recalled']>('Recall').implement({
  description: 'What the companion remembered for this turn, per layer.',
  fields: (t) => ({
    profile: t.field({ type: [RecalledMemory], resolve: (r) => r.profile }),
    relationship: t.field({ type: [RecalledMemory], resolve: (r) => r.relationship }),
  }),
});

const StartChatInput = builder.inputType('StartChatInput', {
  fields: (t) => ({ personaId: t.id({ required: true }) }),
});

const StartChatPayload = builder
  .objectRef<Awaited<ReturnType<typeof startChat>>>('StartChatPayload')
  .implement({
    fields: (t) => ({
      session: t.field({ type: ChatSession, resolve: (p) => p.session }),
      instance: t.field({ type: PersonaInstance, resolve: (p) => p.instance }),
    }),
  });

const SendMessageInput = builder.inputType('SendMessageInput', {
  fields: (t) => ({
    sessionId: t.id({ required: true }),
    content: t.string({ required: true }),
    clientMessageId: t.string({
      required: true,
      description:
        'Idempotency key chosen by the client: a retry with the same id returns the same turn.',
    }),
  }),
});

const SendMessagePayload = builder.objectRef<Turn>('SendMessagePayload').implement({
  fields: (t) => ({
    userMessage: t.field({ type: Message, resolve: (p) => p.userMessage }),
    reply: t.field({ type: Message, resolve: (p) => p.reply }),
    recalled: t.field({ type: Recall, resolve: (p) => p.recalled }),
  }),
});

builder.mutationFields((t) => ({
  startChat: t.field({
    type: StartChatPayload,
    args: { input: t.arg({ type: StartChatInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      startChat(
        ctx.services,
        viewerOf(ctx).id,
        parseGlobalId(String(input.personaId), 'Persona', 'personaId'),
      ),
  }),
  sendMessage: t.field({
    type: SendMessagePayload,
    description: 'One chat turn. Memory extraction runs afterwards, in the background.',
    args: { input: t.arg({ type: SendMessageInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      sendMessage(ctx.services, {
        userId: viewerOf(ctx).id,
        sessionId: parseGlobalId(String(input.sessionId), 'ChatSession', 'sessionId'),
        content: input.content,
        clientMessageId: input.clientMessageId,
      }),
  }),
}));

const ReplyDelta = builder.objectRef<{ kind: 'delta'; text: string }>('ReplyDelta').implement({
  description: 'A piece of the reply, in order. The final event carries the whole reply.',
  fields: (t) => ({ text: t.exposeString('text') }),
});

const ReplyDone = builder.objectRef<{ kind: 'done'; turn: Turn }>('ReplyDone').implement({
  description: 'The last event of a streamed turn: the persisted turn, as sendMessage returns it.',
  fields: (t) => ({ turn: t.field({ type: SendMessagePayload, resolve: (e) => e.turn }) }),
});

const ReplyEvent = builder.unionType('ReplyEvent', {
  types: [ReplyDelta, ReplyDone],
  resolveType: (event) => (event.kind === 'delta' ? ReplyDelta : ReplyDone),
});

builder.subscriptionFields((t) => ({
  sendMessageStream: t.field({
    type: ReplyEvent,
    description:
      'sendMessage with the reply streamed (over SSE: `Accept: text/event-stream`): ReplyDelta ' +
      'events, then one ReplyDone. Same input, idempotency, limits and errors as sendMessage. ' +
      'Disconnecting does not cancel the turn: it is persisted and a retry with the same ' +
      'clientMessageId returns it.',
    args: { input: t.arg({ type: SendMessageInput, required: true }) },
    subscribe: (_root, { input }, ctx) =>
      streamMessage(
        ctx.services,
        {
          userId: viewerOf(ctx).id,
          sessionId: parseGlobalId(String(input.sessionId), 'ChatSession', 'sessionId'),
          content: input.content,
          clientMessageId: input.clientMessageId,
        },
        { requestId: ctx.requestId },
      ),
    resolve: (event: TurnEvent) => event,
  }),
}));
