import { createHash, timingSafeEqual } from 'node:crypto';
import type { Viewer } from './tokens.js';

/** The key id a Supabase `service_role` token is logged under. */
export const SUPABASE_SERVICE_ROLE = 'supabase-service-role';

/**
 * A server-to-server caller: admin scope, but no user of its own. Its `id` is not a UUID, so it
 * never equals a row's owner and no query can treat it as one; operations that act as a user
 * refuse it (src/graphql/auth.ts), admin ones take an explicit userId.
 */
export const serviceViewer = (keyId: string): Viewer => ({
  id: `service:${keyId}`,
  isAdmin: true,
  service: keyId,
});

const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * API keys from SERVICE_API_KEYS, sent as `Authorization: Bearer <id>:<secret>` (a JWT never
 * contains `:`). Secrets are compared as SHA-256 digests with timingSafeEqual, so neither their
 * content nor their length shows in the time an answer takes; an unknown id is compared against
 * a dummy for the same reason.
 */
export function createServiceKeyCheck(keys: ReadonlyMap<string, string>) {
  const digests = new Map([...keys].map(([id, secret]) => [id, digest(secret)]));
  const dummy = digest('no such key');
  return (token: string): Viewer | null => {
    const at = token.indexOf(':');
    const id = token.slice(0, at);
    const expected = digests.get(id);
    const matches = timingSafeEqual(digest(token.slice(at + 1)), expected ?? dummy);
    return matches && expected ? serviceViewer(id) : null;
  };
}
