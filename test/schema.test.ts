import { readFileSync } from 'node:fs';
import { type GraphQLField, type GraphQLObjectType, isObjectType } from 'graphql';
import { describe, expect, it } from 'vitest';
import { printedSchema } from '../scripts/print-schema.js';
import { schema } from '../src/graphql/schema.js';

function fieldsOf(typeName: string): Record<string, string> {
  const type = schema.getType(typeName);
  if (!isObjectType(type)) throw new Error(`${typeName} is not an object type`);
  return Object.fromEntries(
    Object.values((type as GraphQLObjectType).getFields()).map((f) => [f.name, String(f.type)]),
  );
}

function argsOf(typeName: string, field: string): Record<string, string> {
  const f = (schema.getType(typeName) as GraphQLObjectType).getFields()[field] as GraphQLField<
    unknown,
    unknown
  >;
  return Object.fromEntries(f.args.map((a) => [a.name, String(a.type)]));
}

describe('schema.graphql', () => {
  it('is generated from the code and committed (run `npm run generate` if this fails)', () => {
    const committed = readFileSync(new URL('../schema.graphql', import.meta.url), 'utf8');
    expect(committed).toBe(printedSchema());
  });

  it('keeps the public contract of DESIGN.md', () => {
    expect(fieldsOf('Query')).toMatchObject({
      viewer: 'User!',
      personas: 'PersonaConnection!',
      profileMemories: 'MemoryConnection!',
      relationshipMemories: 'MemoryConnection!',
      node: 'Node',
    });
    expect(argsOf('Query', 'personas')).toMatchObject({ first: 'Int', after: 'String' });
    expect(argsOf('Query', 'profileMemories')).toMatchObject({
      userId: 'ID',
      category: 'MemoryCategory',
      search: 'String',
      first: 'Int',
      after: 'String',
    });
    expect(argsOf('Query', 'relationshipMemories')).toMatchObject({
      instanceId: 'ID!',
      category: 'MemoryCategory',
      search: 'String',
      first: 'Int',
      after: 'String',
    });
    expect(fieldsOf('Mutation')).toMatchObject({
      startChat: 'StartChatPayload!',
      sendMessage: 'SendMessagePayload!',
    });
    expect(argsOf('Mutation', 'startChat')).toEqual({ input: 'StartChatInput!' });
    expect(argsOf('Mutation', 'sendMessage')).toEqual({ input: 'SendMessageInput!' });
    expect(fieldsOf('StartChatPayload')).toEqual({
      session: 'ChatSession!',
      instance: 'PersonaInstance!',
    });
    expect(fieldsOf('SendMessagePayload')).toEqual({
      userMessage: 'Message!',
      reply: 'Message!',
      recalled: 'Recall!',
    });
    expect(fieldsOf('Recall')).toEqual({
      profile: '[RecalledMemory!]!',
      relationship: '[RecalledMemory!]!',
    });
    expect(fieldsOf('RecalledMemory')).toEqual({ memory: 'Memory!', score: 'Float!' });
    expect(fieldsOf('Memory')).toMatchObject({
      id: 'ID!',
      content: 'String!',
      category: 'MemoryCategory!',
      layer: 'MemoryLayer!',
      createdAt: 'DateTime!',
    });
    expect(fieldsOf('Message')).toMatchObject({
      id: 'ID!',
      role: 'MessageRole!',
      content: 'String!',
      createdAt: 'DateTime!',
    });
    expect(fieldsOf('MemoryConnection')).toMatchObject({
      edges: '[MemoryEdge!]!',
      pageInfo: 'PageInfo!',
    });
    expect(fieldsOf('MemoryEdge')).toMatchObject({
      node: 'Memory!',
      cursor: 'String!',
      score: 'Float',
    });
    const sdl = printedSchema();
    expect(sdl).toMatch(/input StartChatInput \{\s+personaId: ID!\s+\}/);
    expect(sdl).toMatch(/enum MemoryLayer \{[^}]*PROFILE[^}]*RELATIONSHIP/);
    for (const type of ['Memory', 'Message', 'Persona', 'PersonaInstance', 'ChatSession', 'User']) {
      expect(sdl).toMatch(new RegExp(`type ${type} implements Node`));
    }
  });
});
