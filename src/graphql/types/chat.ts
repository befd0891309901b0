import { sendMessage, type Turn } from '../../chat/send-message.js';
import { startChat } from '../../chat/start-chat.js';
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
