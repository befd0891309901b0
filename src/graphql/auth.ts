import type { Context } from './context.js';

/** Type-level scope for rows that belong to one user: the owner sees them, and admins. */
export const ownerOrAdmin = (parent: { userId: string }, ctx: Context) =>
  parent.userId === ctx.viewer?.id ? true : { admin: true };

/** The viewer, for resolvers behind a `user` scope (which guarantees it is set). */
export function viewerOf(ctx: Context) {
  if (!ctx.viewer) throw new Error('resolver reached without an authenticated viewer');
  return ctx.viewer;
}
