import type { Message, PrismaClient } from '@prisma/client';

export interface MessagePageRequest {
  sessionId: string;
  first: number;
  /** Keyset position: messages strictly older than this. */
  after?: { createdAt: Date; id: string };
}

export interface MessagePage {
  rows: Message[];
  hasNextPage: boolean;
}

/**
 * Newest-first pages of sessions' messages, all in one statement. Each page is a LATERAL
 * subquery with its own position and LIMIT on the (session_id, created_at) index, so a long
 * session costs no more than a short one. (Prisma's nested `take` over several parents reads
 * every child row and cuts in memory: with 20k messages in one session,
 * `sessions { messages(first: 2) }` took 15× longer and held them all.)
 */
export async function sessionMessagePages(
  prisma: PrismaClient,
  requests: readonly MessagePageRequest[],
): Promise<MessagePage[]> {
  if (requests.length === 0) return [];
  const sessions = requests.map((r) => r.sessionId);
  // One row beyond the page tells whether another page follows.
  const limits = requests.map((r) => r.first + 1);
  const afterAt = requests.map((r) => r.after?.createdAt.toISOString() ?? null);
  const afterId = requests.map((r) => r.after?.id ?? null);
  const rows = await prisma.$queryRaw<(Message & { page: number })[]>`
    SELECT page.n::int AS page, listed.*
    FROM unnest(${sessions}::uuid[], ${limits}::int[], ${afterAt}::timestamptz[], ${afterId}::uuid[])
      WITH ORDINALITY AS page(session_id, lim, after_at, after_id, n)
    CROSS JOIN LATERAL (
      SELECT m.id, m.session_id AS "sessionId", m.user_id AS "userId", m.role::text AS role,
        m.content, m.client_message_id AS "clientMessageId", m.reply_to_id AS "replyToId",
        m.model, m.prompt_tokens AS "promptTokens", m.completion_tokens AS "completionTokens",
        m.recall, m.created_at AS "createdAt"
      FROM messages m
      WHERE m.session_id = page.session_id
        AND (page.after_at IS NULL OR (m.created_at, m.id) < (page.after_at, page.after_id))
      ORDER BY m.created_at DESC, m.id DESC
      LIMIT page.lim
    ) AS listed
    ORDER BY page.n, listed."createdAt" DESC, listed.id DESC`;
  const out = requests.map((): Message[] => []);
  for (const { page, ...row } of rows) out[page - 1]?.push(row);
  return out.map((list, i) => {
    const first = requests[i]?.first ?? 0;
    return { rows: list.slice(0, first), hasNextPage: list.length > first };
  });
}
