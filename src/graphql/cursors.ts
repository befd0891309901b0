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

export function parseKeysetCursor(cursor: string): { createdAt: Date; id: string } {
  const raw = Buffer.from(cursor, 'base64url').toString('utf8');
  const match = /^k:([^|]+)\|([0-9a-f-]{36})$/.exec(raw);
  const createdAt = new Date(match?.[1] ?? 'invalid');
  if (!match?.[2] || Number.isNaN(createdAt.getTime()))
    throw badInput('Invalid cursor.', { field: 'after' });
  return { createdAt, id: match[2] };
}

export function parseOffsetCursor(cursor: string): number {
  const raw = Buffer.from(cursor, 'base64url').toString('utf8');
  const match = /^o:(\d{1,6})$/.exec(raw);
  if (!match?.[1]) throw badInput('Invalid cursor.', { field: 'after' });
  return Number(match[1]);
}
