import { decodeGlobalID } from '@pothos/plugin-relay';
import { badInput } from '../errors.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Every type implementing Node (test/hostile-ids.test.ts checks this list against the schema).
 * `node(id)` asks the schema for the decoded type name: an unknown one must stop here as bad
 * input, not reach Pothos as a type "that has not been implemented" (a masked 500).
 */
export const NODE_TYPES: ReadonlySet<string> = new Set([
  'ChatSession',
  'FollowUp',
  'Job',
  'Memory',
  'Message',
  'Persona',
  'PersonaInstance',
  'User',
]);

/**
 * Decodes a Relay global ID of the expected type into the row's UUID. Every malformed or
 * mistyped id is BAD_USER_INPUT before any query runs.
 */
export function parseGlobalId(id: string, typename: string, field: string): string {
  try {
    const decoded = decodeGlobalID(id);
    if (decoded.typename === typename && UUID.test(decoded.id)) return decoded.id.toLowerCase();
  } catch {
    // fall through to the uniform error below
  }
  throw badInput(`${field} is not a valid ${typename} id.`, { field });
}

/**
 * The relay plugin's decoder for `node(id)` and global-ID args: every id in this schema is a
 * UUID of a Node type, so anything else is rejected as BAD_USER_INPUT before it reaches the
 * database.
 */
export function decodeNodeId(globalId: string): { typename: string; id: string } {
  try {
    const decoded = decodeGlobalID(globalId);
    if (NODE_TYPES.has(decoded.typename) && UUID.test(decoded.id)) {
      return { typename: decoded.typename, id: decoded.id.toLowerCase() };
    }
  } catch {
    // fall through
  }
  throw badInput('Invalid id.', { field: 'id' });
}

/** Admin tools know users by their token `sub`, so a raw UUID is accepted beside a global ID. */
export function parseUserId(id: string, field: string): string {
  return UUID.test(id) ? id.toLowerCase() : parseGlobalId(id, 'User', field);
}
