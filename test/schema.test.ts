import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { printedSchema } from '../scripts/print-schema.js';

describe('schema.graphql', () => {
  it('is generated from the code and committed (run `npm run generate` if this fails)', () => {
    const committed = readFileSync(new URL('../schema.graphql', import.meta.url), 'utf8');
    expect(committed).toBe(printedSchema());
  });

  it('keeps the public contract of DESIGN.md', () => {
    const sdl = printedSchema();
    for (const line of [
      'viewer: User!',
      'personas(after: String, before: String, first: Int, last: Int): PersonaConnection!',
      'node(id: ID!): Node',
      'startChat(input: StartChatInput!): StartChatPayload!',
      'sendMessage(input: SendMessageInput!): SendMessagePayload!',
    ]) {
      expect(sdl).toContain(line);
    }
    expect(sdl).toMatch(/profileMemories\(after: String, category: MemoryCategory, first: Int, search: String, userId: ID\): MemoryConnection!/);
    expect(sdl).toMatch(/relationshipMemories\(after: String, category: MemoryCategory, first: Int, instanceId: ID!, search: String\): MemoryConnection!/);
    expect(sdl).toMatch(/type SendMessagePayload \{\s+recalled: Recall!\s+reply: Message!\s+userMessage: Message!\s+\}/);
    expect(sdl).toMatch(/type Recall \{[^}]*profile: \[RecalledMemory!\]!\s+relationship: \[RecalledMemory!\]!/);
    expect(sdl).toMatch(/type RecalledMemory \{\s+memory: Memory!\s+score: Float!\s+\}/);
    expect(sdl).toMatch(/enum MemoryLayer \{[^}]*PROFILE[^}]*RELATIONSHIP/);
    for (const type of ['Memory', 'Message', 'Persona', 'PersonaInstance', 'ChatSession', 'User']) {
      expect(sdl).toMatch(new RegExp(`type ${type} implements Node`));
    }
  });
});
