import { type Message, Prisma } from '@prisma/client';
import { AppError, badInput, conflict, notFound } from '../errors.js';
import { enqueue } from '../jobs/queue.js';
import { EXTRACT_MEMORIES } from '../memory/extract-job.js';
import { markAsked } from '../memory/follow-ups.js';
import {
  readStoredRecall,
  recallForTurn,
  type StoredRecall,
  toStoredRecall,
} from '../memory/recall.js';
import { findMemoriesByIds, type ScoredMemory } from '../memory/store.js';
import type { ChatCompletion, ChatRequest } from '../providers/llm/types.js';
import type { Services } from '../services.js';
import { zoneOrUtc } from '../time/zone.js';
import { assertChatBudget } from '../usage/budgets.js';
import { UsageMeter } from '../usage/meter.js';
import { writeUsage } from '../usage/record.js';
import { buildPrompt, timeNote } from './prompt.js';
import { fitMemorySections } from './prompt-budget.js';
import { loadTurnTime, offlineTimeContext } from './turn-time.js';

export interface SendMessageInput {
  userId: string;
  sessionId: string;
  content: string;
  clientMessageId: string;
}

export interface TurnOptions {
  /** Streams the reply: called with each piece of text as the model produces it. */
  onDelta?: (text: string) => void;
}

export interface Turn {
  userMessage: Message;
  reply: Message;
  recalled: { profile: ScoredMemory[]; relationship: ScoredMemory[] };
}

const CLIENT_ID = /^[\w.:-]{1,128}$/;

/** How long a re-send waits for the same turn still running here before it is told to retry. */
const JOIN_TIMEOUT_MS = 30_000;

function isUniqueViolation(err: unknown): boolean {
  return err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2002';
}

/**
 * One chat turn (DESIGN.md "The chat turn"). Idempotent on (user, clientMessageId): a retry
 * returns the stored turn; a retry after a failed LLM call reuses the stored user message.
 * Memory extraction is enqueued in the reply's transaction and never awaited here.
 */
export async function sendMessage(
  s: Services,
  input: SendMessageInput,
  options: TurnOptions = {},
): Promise<Turn> {
  const content = input.content.trim();
  if (!content) throw badInput('content must not be empty.', { field: 'content' });
  if (content.length > s.config.maxMessageChars) {
    throw badInput(`content is longer than ${s.config.maxMessageChars} characters.`, {
      field: 'content',
    });
  }
  if (!CLIENT_ID.test(input.clientMessageId)) {
    throw badInput('clientMessageId must be 1-128 characters of [A-Za-z0-9_.:-].', {
      field: 'clientMessageId',
    });
  }
  const key = `${input.userId}:${input.clientMessageId}`;
  let release: () => void;
  if (s.runningTurns.has(key)) {
    // A re-send of a turn still running in this process: it costs a rate token, but holds no
    // slot while it waits (the running turn holds one); then it replays that turn below.
    await s.limits.chargeTurn(input.userId);
    if (!(await s.runningTurns.settled(key, JOIN_TIMEOUT_MS))) {
      throw new AppError(
        'SERVICE_UNAVAILABLE',
        'This message is still being answered. Retry with the same clientMessageId.',
        { retryable: true },
      );
    }
    release = s.limits.acquireTurnSlot(input.userId);
  } else {
    release = await s.limits.admitTurn(input.userId);
  }
  try {
    return await s.runningTurns.exclusive(key, () => runTurn(s, input, content, options));
  } finally {
    release();
  }
}

async function runTurn(
  s: Services,
  input: SendMessageInput,
  content: string,
  options: TurnOptions,
): Promise<Turn> {
  const session = await s.prisma.chatSession.findUnique({
    where: { id: input.sessionId },
    include: { instance: { include: { persona: true } }, user: { select: { timeZone: true } } },
  });
  if (!session || session.userId !== input.userId) throw notFound('Chat session');
  const timeZone = zoneOrUtc(session.user.timeZone);

  const userMessage = await persistUserMessage(s, input, content);
  if ('reply' in userMessage && userMessage.reply) {
    return replay(s, userMessage, userMessage.reply);
  }

  const { persona } = session.instance;
  const now = s.now();
  // One read, only when a chat budget is set (src/usage/budgets.ts). The message stays stored:
  // a retry with the same clientMessageId after the reset answers it.
  await assertChatBudget(s.prisma, s.usage, input.userId, now, () =>
    s.metrics.budgetExceeded.inc({ budget: 'chat' }),
  );
  const meter = new UsageMeter();
  const time = await loadTurnTime(
    s.prisma,
    { userId: input.userId, instanceId: session.instanceId },
    userMessage,
    now,
  );
  const history = await s.prisma.message.findMany({
    where: {
      sessionId: session.id,
      createdAt: { lte: userMessage.createdAt },
      NOT: { id: userMessage.id },
    },
    orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
    take: s.config.historyWindow,
    select: { role: true, content: true },
  });
  // Recall for the conversation: the message and the persona's reply it answers.
  const previousReply = history.find((m) => m.role === 'ASSISTANT')?.content ?? null;
  const recalled = fitMemorySections(
    await recallForTurn(
      { db: s.prisma, embedder: meter.embedder(s.embedder), logger: s.logger, metrics: s.metrics },
      { userId: input.userId, instanceId: session.instanceId },
      { message: content, previousReply },
      {
        profileK: s.config.profileK,
        relationshipK: s.config.relationshipK,
        minScore: s.config.minScore,
        fusion: s.config.fusion,
      },
    ),
    s.config.promptMemoryTokens,
    now,
    timeZone,
  );
  const messages = buildPrompt({
    persona,
    profile: recalled.profile,
    relationship: recalled.relationship,
    history: history.reverse(),
    userMessage: content,
    now,
    timeZone,
    lastTalkAt: time.lastTalkAt,
    followUp: time.followUp,
  });
  const told = (m: ScoredMemory) => ({
    content: m.memory.content,
    score: m.score,
    told: timeNote(m.memory, now, timeZone),
  });

  const request: ChatRequest = {
    messages,
    context: {
      personaName: persona.name,
      personaTraits: (persona.traits ?? {}) as Record<string, unknown>,
      userMessage: content,
      profile: recalled.profile.map(told),
      relationship: recalled.relationship.map(told),
      ...offlineTimeContext(time, now, timeZone),
    },
  };
  let completion: ChatCompletion;
  try {
    completion = options.onDelta
      ? await s.chat.stream(request, options.onDelta)
      : await s.chat.complete(request);
  } catch (err) {
    s.logger.error({ err, sessionId: session.id }, 'chat model failed');
    throw new AppError(
      'SERVICE_UNAVAILABLE',
      'The companion could not answer right now. Retry with the same clientMessageId.',
      { retryable: true },
    );
  }
  meter.chat(s.chat.provider, messages, completion);

  // Stored on the reply, so a retried request returns the very same turn.
  const stored = toStoredRecall(recalled);
  try {
    let countUsage = () => {};
    const reply = await s.prisma.$transaction(async (tx) => {
      const created = await tx.message.create({
        data: {
          sessionId: session.id,
          userId: input.userId,
          role: 'ASSISTANT',
          content: completion.content,
          replyToId: userMessage.id,
          model: completion.model,
          promptTokens: completion.promptTokens,
          completionTokens: completion.completionTokens,
          recall: stored,
          createdAt: s.now(),
        },
      });
      if (time.followUp) {
        await markAsked(tx, {
          id: time.followUp.id,
          instanceId: session.instanceId,
          replyId: created.id,
          now,
        });
      }
      await enqueue(tx, {
        kind: EXTRACT_MEMORIES,
        dedupeKey: `extract:${created.id}`,
        payload: { replyId: created.id },
        userId: input.userId,
        maxAttempts: s.config.jobMaxAttempts,
      });
      countUsage = await writeUsage(tx, s.metrics, input.userId, now, meter);
      return created;
    });
    countUsage();
    s.wakeWorker();
    return {
      userMessage,
      reply,
      recalled: { profile: recalled.profile, relationship: recalled.relationship },
    };
  } catch (err) {
    // A concurrent retry of the same turn won the race: answer with its reply.
    if (!isUniqueViolation(err)) throw err;
    const reply = await s.prisma.message.findUniqueOrThrow({
      where: { replyToId: userMessage.id },
    });
    return replay(s, userMessage, reply);
  }
}

async function persistUserMessage(
  s: Services,
  input: SendMessageInput,
  content: string,
): Promise<Message & { reply?: Message | null }> {
  const key = {
    userId_clientMessageId: { userId: input.userId, clientMessageId: input.clientMessageId },
  };
  for (let attempt = 0; attempt < 2; attempt++) {
    const existing = await s.prisma.message.findUnique({ where: key, include: { reply: true } });
    if (existing) {
      if (existing.sessionId !== input.sessionId || existing.content !== content) {
        throw conflict('clientMessageId was already used for a different message.');
      }
      return existing;
    }
    try {
      return await s.prisma.message.create({
        data: {
          sessionId: input.sessionId,
          userId: input.userId,
          role: 'USER',
          content,
          clientMessageId: input.clientMessageId,
          createdAt: s.now(),
        },
      });
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
      // Lost a race with a concurrent retry: read what it stored.
    }
  }
  throw conflict('clientMessageId is being used by a concurrent request.');
}

async function replay(s: Services, userMessage: Message, reply: Message): Promise<Turn> {
  const stored = readStoredRecall(reply.recall);
  const ids = [...stored.profile, ...stored.relationship].map((r) => r.id);
  const rows = new Map((await findMemoriesByIds(s.prisma, ids)).map((m) => [m.id, m]));
  // Memories deleted since the turn are left out rather than resurrected.
  const pick = (list: StoredRecall['profile']) =>
    list.flatMap((r) => {
      const memory = rows.get(r.id);
      return memory ? [{ memory, score: r.score }] : [];
    });
  const { reply: _omit, ...plain } = userMessage as Message & { reply?: unknown };
  return {
    userMessage: plain,
    reply,
    recalled: { profile: pick(stored.profile), relationship: pick(stored.relationship) },
  };
}
