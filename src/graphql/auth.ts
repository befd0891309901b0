import { forbidden, unauthenticated } from '../errors.js';
import type { Context } from './context.js';

/** Type-level scope for rows that belong to one user: the owner sees them, and admins. */
export const ownerOrAdmin = (parent: { userId: string }, ctx: Context) =>
  parent.userId === ctx.viewer?.id ? true : { admin: true };

/**
 * The user the operation acts as, for resolvers behind a `user` scope. Scope-auth does not guard
 * a subscription's `subscribe` (it runs before any resolver), so this check is what rejects
 * anonymous streams. A server-to-server caller has no user of its own: it is refused here, and
 * uses the admin operations that take an explicit userId.
 */
export function viewerOf(ctx: Context) {
  if (!ctx.viewer) throw unauthenticated();
  if (ctx.viewer.service) {
    throw forbidden(
      'A service key acts as no user: use a user token, or an admin operation with a userId.',
    );
  }
  return ctx.viewer;
}

/** Who did it, for logs and audit: the user's id, or `service:<key id>` for a service caller. */
export function actorOf(ctx: Context): string {
  if (!ctx.viewer) throw unauthenticated();
  return ctx.viewer.id;
}

/**
 * Query conditions for rows the viewer may see (admins: every row). Lookups by id carry it, so
 * another user's row is not found, exactly like an id that does not exist: the answer does not
 * tell a stranger that the id exists.
 */
export function visibleRows(ctx: Context): { userId?: string } {
  return ctx.viewer?.isAdmin ? {} : { userId: viewerOf(ctx).id };
}
