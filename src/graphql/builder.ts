import SchemaBuilder from '@pothos/core';
import DataloaderPlugin from '@pothos/plugin-dataloader';
import PrismaPlugin from '@pothos/plugin-prisma';
import RelayPlugin from '@pothos/plugin-relay';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import { GraphQLError } from 'graphql';
import { getDatamodel, type default as PrismaTypes } from '../generated/pothos-prisma-types.js';
import type { Context } from './context.js';
import { decodeNodeId } from './ids.js';

export const builder = new SchemaBuilder<{
  Context: Context;
  PrismaTypes: PrismaTypes;
  AuthScopes: { user: boolean; admin: boolean };
  Scalars: { DateTime: { Input: Date; Output: Date } };
  DefaultFieldNullability: false;
}>({
  // Scope-auth first so no other plugin's wrapper runs before authorization.
  plugins: [ScopeAuthPlugin, PrismaPlugin, RelayPlugin, DataloaderPlugin],
  defaultFieldNullability: false,
  scopeAuth: {
    // Type scopes run once per object (also for objects reached through node(id)).
    runScopesOnType: true,
    // A service caller (API key, service_role token) is no user: it has the admin scope only.
    authScopes: (ctx) => ({
      user: ctx.viewer !== null && !ctx.viewer.service,
      admin: ctx.viewer?.isAdmin === true,
    }),
    unauthorizedError: (_parent, ctx) =>
      ctx.viewer
        ? new GraphQLError('Not allowed.', { extensions: { code: 'FORBIDDEN' } })
        : new GraphQLError('Authentication required.', { extensions: { code: 'UNAUTHENTICATED' } }),
  },
  prisma: {
    client: (ctx) => ctx.prisma,
    dmmf: getDatamodel(),
    filterConnectionTotalCount: true,
  },
  relay: {
    clientMutationId: 'omit',
    cursorType: 'String',
    nodeQueryOptions: { nullable: true },
    nodesQueryOptions: false,
    decodeGlobalID: decodeNodeId,
  },
});

builder.scalarType('DateTime', {
  description: 'An ISO-8601 timestamp in UTC.',
  serialize: (value) => value.toISOString(),
  parseValue: (value) => {
    const date = typeof value === 'string' ? new Date(value) : new Date(Number.NaN);
    const year = date.getUTCFullYear();
    // Postgres timestamps hold years 1-9999 (of this range); beyond it a cast error is a 500.
    if (Number.isNaN(date.getTime()) || year < 1 || year > 9999) {
      throw new GraphQLError('DateTime must be an ISO-8601 string of years 0001-9999.', {
        extensions: { code: 'BAD_USER_INPUT' },
      });
    }
    return date;
  },
});

// Users and admins (service callers included); fields narrow it further.
builder.queryType({ authScopes: { user: true, admin: true } });
builder.mutationType({ authScopes: { user: true, admin: true } });
builder.subscriptionType({ authScopes: { user: true, admin: true } });
