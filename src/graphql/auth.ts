import { unauthenticated } from '../errors.js';
import type { Context } from './context.js';

/** Type-level scope for rows that belong to one user: the owner sees them, and admins. */
export const ownerOrAdmin = (parent: { userId: string }, ctx: Context) =>
  parent.userId === ctx.viewer?.id ? true : { admin: true };

/**
 * The viewer, for resolvers behind a `user` scope. Scope-auth does not guard a subscription's
 * `subscribe` (it runs before any resolver), so this check is what rejects anonymous streams.
 */
export function viewerOf(ctx: Context) {
  if (!ctx.viewer) throw unauthenticated();
  return ctx.viewer;
}
