import { randomUUID } from 'node:crypto';
import { type Message, Prisma } from '@prisma/client';
import { z } from 'zod';
import type { RawQuery } from '../db/raw.js';
import { enqueueStatement } from '../jobs/queue.js';
import { EXTRACT_MEMORIES } from '../memory/extract-job.js';
import {
  type DueFollowUp,
  dueFollowUpSelect,
  expireFollowUpsStatement,
  markAskedStatement,
} from '../memory/follow-ups.js';
import type { StoredRecall } from '../memory/recall.js';
import { type LayerSizes, liveRowsSql } from '../memory/store.js';

/**
 * The chat turn's database work in two statements (DESIGN.md "The chat turn"): `openTurn`
 * before the model is asked, `storeReply` after it answered. Recall (src/memory/recall.ts) and
 * the per-user rate limit (src/limits-store.ts) are the turn's only other round trips.
 *
 * Why hand-written SQL instead of Prisma's model API: the same work through Prisma took 18
 * round trips (relations are separate SELECTs, every create a BEGIN … COMMIT of its own, the
 * reply's interactive transaction two more) and much of a turn's server CPU in its query
 * compiler. Each statement here is one parameterised tagged template with data-modifying CTEs,
 * so it is atomic on its own; it runs on the driver directly (src/db/raw.ts says why) and its
 * one result row is checked with zod before use. Both are prepared statements: their text is
 * the same for every turn (storeReply's in a few shapes), and every part of their plan is an
 * index lookup by key, so the plan cached per connection serves every user.
 */

/** A messages row as JSON, in Prisma's `Message` shape (timestamps arrive as ISO strings). */
const messageJson = (m: Prisma.Sql) => Prisma.sql`json_build_object(
  'id', ${m}.id, 'sessionId', ${m}.session_id, 'userId', ${m}.user_id, 'role', ${m}.role,
  'content', ${m}.content, 'clientMessageId', ${m}.client_message_id,
  'replyToId', ${m}.reply_to_id, 'model', ${m}.model, 'promptTokens', ${m}.prompt_tokens,
  'completionTokens', ${m}.completion_tokens, 'recall', ${m}.recall,
  'createdAt', ${m}.created_at)`;

const date = z.union([z.string(), z.date()]).transform((v, ctx) => {
  const d = v instanceof Date ? v : new Date(v);
  if (Number.isNaN(d.getTime())) {
    ctx.addIssue({ code: 'custom', message: `not a timestamp: ${String(v)}` });
    return z.NEVER;
  }
  return d;
});

const JsonValue: z.ZodType<Prisma.JsonValue> = z.lazy(() =>
  z.union([
    z.string(),
    z.number(),
    z.boolean(),
    z.null(),
    z.array(JsonValue),
    z.record(z.string(), JsonValue),
  ]),
);

const MessageRow = z.object({
  id: z.string(),
  sessionId: z.string(),
  userId: z.string(),
  role: z.enum(['USER', 'ASSISTANT']),
  content: z.string(),
  clientMessageId: z.string().nullable(),
  replyToId: z.string().nullable(),
  model: z.string().nullable(),
  promptTokens: z.number().int().nullable(),
  completionTokens: z.number().int().nullable(),
  recall: JsonValue.nullable(),
  createdAt: date,
}) satisfies z.ZodType<Message, unknown>;

const OpenTurnRow = z.object({
  session: z
    .object({
      instanceId: z.string(),
      timeZone: z.string(),
      persona: z.object({
        name: z.string(),
        systemPrompt: z.string(),
        traits: JsonValue,
      }),
    })
    .nullable(),
  existing: MessageRow.extend({ reply: MessageRow.nullable() }).nullable(),
  inserted: MessageRow.nullable(),
  history: z
    .array(z.object({ role: z.enum(['USER', 'ASSISTANT']), content: z.string() }))
    .nullable(),
  lastTalkAt: date.nullable(),
  followUp: z
    .object({
      id: z.string(),
      memoryId: z.string(),
      content: z.string(),
      occurredAt: date.nullable(),
      dueAt: date,
    })
    .nullable(),
  profileRows: z.number().int(),
  relationshipRows: z.number().int(),
});

// Built once: zod 4 compiles an object schema's parser on its first use, so a schema made per
// call paid that compilation on every turn (~2 % of a turn's server CPU).
const StoredReplyRow = z.object({ reply: MessageRow });

export interface OpenTurnInput {
  userId: string;
  sessionId: string;
  content: string;
  clientMessageId: string;
  now: Date;
  historyWindow: number;
}

type TurnSession = NonNullable<z.infer<typeof OpenTurnRow>['session']>;

export type OpenedTurn =
  | { kind: 'no-session' }
  /** (user, clientMessageId) is taken by another statement still committing: read again. */
  | { kind: 'raced' }
  /** (user, clientMessageId) names another message (other session or content). */
  | { kind: 'conflict' }
  /** The message was answered already: the stored turn is returned as it is. */
  | { kind: 'answered'; userMessage: Message; reply: Message }
  | {
      /** A turn to answer: a new user message, or a stored one whose model call had failed. */
      kind: 'turn';
      session: TurnSession;
      userMessage: Message;
      /** Recent messages of the session, oldest first, without the user message. */
      history: { role: 'USER' | 'ASSISTANT'; content: string }[];
      lastTalkAt: Date | null;
      followUp: DueFollowUp | null;
      /** Live memories of the turn's two layers, for recall's exact-or-index choice. */
      liveRows: LayerSizes;
    };

/**
 * One statement opens a turn: the session with its persona and the user's zone (only the
 * owner's: another user's session reads as missing), the message already stored under
 * (user, clientMessageId) with its reply, else the new user message inserted, and, unless the
 * stored message is a different one or already answered (nothing more is needed then):
 *   - the follow-ups whose window is over persisted as EXPIRED (the pick ignores them anyway);
 *   - the history window before the user message (for a retry after a failed model call, the
 *     messages up to the stored one, which is reused);
 *   - the user's previous message to this persona (any session) and the oldest due follow-up
 *     this persona may raise (src/memory/follow-ups.ts dueFollowUpSelect);
 *   - the live memories of the turn's two layers (two primary-key reads of memory_layer_stats),
 *     so recall knows each layer's path before it runs (src/memory/store.ts layerPath).
 * Every part reads the statement's one snapshot, which does not contain the row it inserts.
 */
export async function openTurn(query: RawQuery, t: OpenTurnInput): Promise<OpenedTurn> {
  const now = Prisma.sql`${t.now}::timestamptz`;
  const rows = await query(
    Prisma.sql`
    WITH s AS (
      SELECT cs.id, cs.instance_id, u.time_zone, p.name, p.system_prompt, p.traits
      FROM chat_sessions cs
      JOIN persona_instances pi ON pi.id = cs.instance_id
      JOIN personas p ON p.id = pi.persona_id
      JOIN users u ON u.id = cs.user_id
      WHERE cs.id = ${t.sessionId}::uuid AND cs.user_id = ${t.userId}::uuid
    ),
    existing AS (
      SELECT m.*, (SELECT ${messageJson(Prisma.sql`r`)} FROM messages r WHERE r.reply_to_id = m.id)
        AS reply
      FROM messages m
      WHERE m.user_id = ${t.userId}::uuid AND m.client_message_id = ${t.clientMessageId}
    ),
    inserted AS (
      INSERT INTO messages (id, session_id, user_id, role, content, client_message_id, created_at)
      SELECT ${randomUUID()}::uuid, s.id, ${t.userId}::uuid, 'USER', ${t.content},
        ${t.clientMessageId}, ${now}
      FROM s WHERE NOT EXISTS (SELECT 1 FROM existing)
      ON CONFLICT (user_id, client_message_id) DO NOTHING
      RETURNING *
    ),
    go AS (
      SELECT s.instance_id,
        COALESCE((SELECT created_at FROM existing), ${now}) AS cut_at,
        (SELECT id FROM existing) AS cut_id
      FROM s
      WHERE NOT EXISTS (SELECT 1 FROM existing e WHERE e.session_id <> s.id
        OR e.content <> ${t.content} OR e.reply IS NOT NULL)
    ),
    expired AS (${expireFollowUpsStatement(t.userId, t.now, Prisma.sql`EXISTS (SELECT 1 FROM go)`)}),
    history AS (
      SELECT m.id, m.role, m.content, m.created_at FROM messages m, go
      WHERE m.session_id = ${t.sessionId}::uuid AND m.created_at <= go.cut_at
        AND m.id IS DISTINCT FROM go.cut_id
      ORDER BY m.created_at DESC, m.id DESC
      LIMIT ${t.historyWindow}
    ),
    last_talk AS (
      SELECT m.created_at FROM messages m
      JOIN chat_sessions cs ON cs.id = m.session_id, go
      WHERE m.user_id = ${t.userId}::uuid AND m.role = 'USER' AND cs.instance_id = go.instance_id
        AND m.created_at < go.cut_at
      ORDER BY m.created_at DESC, m.id DESC
      LIMIT 1
    ),
    follow_up AS (${dueFollowUpSelect(t.userId, Prisma.sql`(SELECT instance_id FROM go)`, t.now)})
    SELECT
      (SELECT json_build_object('instanceId', instance_id, 'timeZone', time_zone,
        'persona', json_build_object('name', name, 'systemPrompt', system_prompt, 'traits', traits))
        FROM s) AS session,
      (SELECT jsonb_set(${messageJson(Prisma.sql`e`)}::jsonb, '{reply}', COALESCE(e.reply::jsonb, 'null'))
        FROM existing e) AS existing,
      (SELECT ${messageJson(Prisma.sql`i`)} FROM inserted i) AS inserted,
      (SELECT json_agg(json_build_object('role', h.role, 'content', h.content)
        ORDER BY h.created_at, h.id) FROM history h) AS history,
      (SELECT created_at FROM last_talk) AS "lastTalkAt",
      (SELECT json_build_object('id', id, 'memoryId', memory_id, 'content', content,
        'occurredAt', occurred_at, 'dueAt', due_at) FROM follow_up) AS "followUp",
      ${liveRowsSql(t.userId, null)} AS "profileRows",
      ${liveRowsSql(t.userId, Prisma.sql`(SELECT instance_id FROM s)`)} AS "relationshipRows"`,
    { prepare: true },
  );
  const row = OpenTurnRow.parse(rows[0]);
  if (!row.session) return { kind: 'no-session' };
  let userMessage: Message;
  if (row.existing) {
    const { reply, ...existing } = row.existing;
    if (existing.sessionId !== t.sessionId || existing.content !== t.content) {
      return { kind: 'conflict' };
    }
    if (reply) return { kind: 'answered', userMessage: existing, reply };
    userMessage = existing;
  } else if (row.inserted) {
    userMessage = row.inserted;
  } else {
    return { kind: 'raced' };
  }
  return {
    kind: 'turn',
    session: row.session,
    userMessage,
    history: row.history ?? [],
    lastTalkAt: row.lastTalkAt,
    followUp: row.followUp,
    liveRows: { profile: row.profileRows, relationship: row.relationshipRows },
  };
}

export interface NewReply {
  sessionId: string;
  userId: string;
  instanceId: string;
  /** The user message it answers. */
  replyToId: string;
  content: string;
  model: string | null;
  promptTokens: number | null;
  completionTokens: number | null;
  recall: StoredRecall;
  createdAt: Date;
  /** The follow-up the prompt carried: marked ASKED by this reply. */
  followUpId: string | null;
  now: Date;
  jobMaxAttempts: number;
}

/**
 * One statement stores a turn's reply, marks the follow-up its prompt carried as asked and
 * enqueues the memory extraction (dedupe key `extract:<reply id>`): all of it or nothing.
 * Null when the user message already has a reply (a concurrent retry of the same turn won the
 * race): then nothing else was written either.
 *
 * `extra` adds more data-modifying CTEs to the same statement (e.g. a usage-ledger upsert),
 * each `name AS (…)`. The stored reply is in scope as the CTE `reply` (its RETURNING *): an
 * extra step must read it (`… SELECT … FROM reply …`) so that it writes only when the reply
 * was stored, like the job and the follow-up mark below.
 */
export async function storeReply(
  query: RawQuery,
  r: NewReply,
  extra: readonly Prisma.Sql[] = [],
): Promise<Message | null> {
  const id = randomUUID();
  const stored = Prisma.sql`EXISTS (SELECT 1 FROM reply)`;
  const job = enqueueStatement(
    {
      kind: EXTRACT_MEMORIES,
      dedupeKey: `extract:${id}`,
      payload: { replyId: id },
      userId: r.userId,
      maxAttempts: r.jobMaxAttempts,
    },
    stored,
  );
  const steps = [
    Prisma.sql`job AS (${job})`,
    ...(r.followUpId
      ? [
          Prisma.sql`asked AS (${markAskedStatement({
            id: r.followUpId,
            instanceId: r.instanceId,
            replyId: id,
            now: r.now,
          })} AND ${stored})`,
        ]
      : []),
    ...extra,
  ];
  const rows = await query(
    Prisma.sql`
    WITH reply AS (
      INSERT INTO messages (id, session_id, user_id, role, content, reply_to_id, model,
        prompt_tokens, completion_tokens, recall, created_at)
      VALUES (${id}::uuid, ${r.sessionId}::uuid, ${r.userId}::uuid, 'ASSISTANT', ${r.content},
        ${r.replyToId}::uuid, ${r.model}, ${r.promptTokens}::int, ${r.completionTokens}::int,
        ${JSON.stringify(r.recall)}::jsonb, ${r.createdAt}::timestamptz)
      ON CONFLICT (reply_to_id) DO NOTHING
      RETURNING *
    ),
    ${Prisma.join(steps, ',\n    ')}
    SELECT ${messageJson(Prisma.sql`reply`)} AS reply FROM reply`,
    { prepare: true },
  );
  if (rows.length === 0) return null;
  return StoredReplyRow.parse(rows[0]).reply;
}
