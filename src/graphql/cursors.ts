import { badInput } from '../errors.js';

/**
 * Opaque cursors. Listing pages by (createdAt, id) so a page boundary never moves when new
 * memories arrive; relevance search pages by offset into the ranking (a ranking has no
 * natural key). The prefix keeps one kind from being passed to the other.
 */
const encode = (s: string) => Buffer.from(s, 'utf8').toString('base64url');

export const keysetCursor = (row: { createdAt: Date; id: string }) =>
  encode(`k:${row.createdAt.toISOString()}|${row.id}`);
export const offsetCursor = (offset: number) => encode(`o:${offset}`);

/**
 * Exactly what keysetCursor writes: an ISO instant of years 0001-9999 (a timestamp Postgres
 * can hold) and a UUID. Anything looser reaches SQL as a cast error, which is a 500.
 */
const KEYSET =
  /^k:((?!0000)\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)\|([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

/** Cursors are short; a longer one is not worth decoding. */
const MAX_CURSOR_CHARS = 200;

export function parseKeysetCursor(cursor: string): { createdAt: Date; id: string } {
  const raw =
    cursor.length <= MAX_CURSOR_CHARS ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
  const match = KEYSET.exec(raw);
  const createdAt = new Date(match?.[1] ?? 'invalid');
  // The round trip rejects dates that parse but do not exist (2024-02-30 rolls over).
  if (!match?.[2] || Number.isNaN(createdAt.getTime()) || createdAt.toISOString() !== match[1])
    throw badInput('Invalid cursor.', { field: 'after' });
  return { createdAt, id: match[2] };
}

export function parseOffsetCursor(cursor: string): number {
  const raw =
    cursor.length <= MAX_CURSOR_CHARS ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
  const match = /^o:(\d{1,6})$/.exec(raw);
  if (!match?.[1]) throw badInput('Invalid cursor.', { field: 'after' });
  return Number(match[1]);
}

/** A Relay connection of one forward page: `after` given means a page came before it. */
export function connectionOf<E extends { cursor: string }>(
  edges: E[],
  hasNextPage: boolean,
  after: string | null | undefined,
) {
  return {
    edges,
    pageInfo: {
      hasNextPage,
      hasPreviousPage: Boolean(after),
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges.at(-1)?.cursor ?? null,
    },
  };
}
