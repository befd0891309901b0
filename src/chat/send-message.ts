import { type Message, Prisma } from '@prisma/client';
import { AppError, badInput, conflict, notFound } from '../errors.js';
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
import { ledgerUpsertSql } from '../usage/ledger.js';
import { UsageMeter } from '../usage/meter.js';
import { countUsage } from '../usage/record.js';
import { buildPrompt, timeNote } from './prompt.js';
import { fitMemorySections } from './prompt-budget.js';
import { type OpenedTurn, openTurn, storeReply } from './turn-store.js';
import { offlineTimeContext, type TurnTime } from './turn-time.js';

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

/**
 * One chat turn (DESIGN.md "The chat turn"). Idempotent on (user, clientMessageId): a retry
 * returns the stored turn; a retry after a failed LLM call reuses the stored user message.
 * Memory extraction is enqueued in the statement storing the reply and never awaited here.
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
  const now = s.now();
  let opened: OpenedTurn = { kind: 'raced' };
  // A second attempt only after losing a race with a concurrent retry: it reads what that stored.
  for (let attempt = 0; attempt < 2 && opened.kind === 'raced'; attempt++) {
    opened = await openTurn(s.sql, {
      userId: input.userId,
      sessionId: input.sessionId,
      content,
      clientMessageId: input.clientMessageId,
      now: attempt === 0 ? now : s.now(),
      historyWindow: s.config.historyWindow,
    });
  }
  if (opened.kind === 'no-session') throw notFound('Chat session');
  if (opened.kind === 'conflict') {
    throw conflict('clientMessageId was already used for a different message.');
  }
  if (opened.kind === 'raced') {
    throw conflict('clientMessageId is being used by a concurrent request.');
  }
  if (opened.kind === 'answered') return replay(s, opened.userMessage, opened.reply);
  const turn = opened;
  const { session, userMessage, history } = turn;
  const timeZone = zoneOrUtc(session.timeZone);
  const { persona } = session;
  const time: TurnTime = { lastTalkAt: turn.lastTalkAt, followUp: turn.followUp };
  // One read, only when a chat budget is set (src/usage/budgets.ts). The message stays stored:
  // a retry with the same clientMessageId after the reset answers it.
  await assertChatBudget(s.prisma, s.usage, input.userId, now, () =>
    s.metrics.budgetExceeded.inc({ budget: 'chat' }),
  );
  const meter = new UsageMeter();

  // Recall for the conversation: the message and the persona's reply it answers.
  const previousReply = history.findLast((m) => m.role === 'ASSISTANT')?.content ?? null;
  const recalled = fitMemorySections(
    await recallForTurn(
      { db: s.sql, embedder: meter.embedder(s.embedder), logger: s.logger, metrics: s.metrics },
      { userId: input.userId, instanceId: session.instanceId, liveRows: turn.liveRows },
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
    history,
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
    s.logger.error({ err, sessionId: input.sessionId }, 'chat model failed');
    throw new AppError(
      'SERVICE_UNAVAILABLE',
      'The companion could not answer right now. Retry with the same clientMessageId.',
      { retryable: true },
    );
  }

  meter.chat(s.chat.provider, messages, completion);

  // Stored on the reply (with what was recalled, so a retried request returns the very same
  // turn), the follow-up marked asked, the extraction job enqueued and the turn's usage added
  // to the ledger: one statement. The usage is written even when a concurrent retry stored its
  // reply first: this request's tokens were spent all the same.
  const usage = meter.entries();
  const ledger = ledgerUpsertSql(input.userId, now, usage);
  const reply = await storeReply(
    s.sql,
    {
      sessionId: input.sessionId,
      userId: input.userId,
      instanceId: session.instanceId,
      replyToId: userMessage.id,
      content: completion.content,
      model: completion.model,
      promptTokens: completion.promptTokens,
      completionTokens: completion.completionTokens,
      recall: toStoredRecall(recalled),
      createdAt: s.now(),
      followUpId: time.followUp?.id ?? null,
      now,
      jobMaxAttempts: s.config.jobMaxAttempts,
    },
    ledger ? [Prisma.sql`usage AS (${ledger})`] : [],
  );
  countUsage(s.metrics, usage);
  if (!reply) {
    // A concurrent retry of the same turn won the race: answer with its reply.
    const won = await s.prisma.message.findUniqueOrThrow({
      where: { replyToId: userMessage.id },
    });
    return replay(s, userMessage, won);
  }
  s.wakeWorker();
  return {
    userMessage,
    reply,
    recalled: { profile: recalled.profile, relationship: recalled.relationship },
  };
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
