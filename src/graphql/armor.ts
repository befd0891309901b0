import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import type { Plugin } from 'graphql-yoga';

/** Per-operation limits, checked before execution (env GRAPHQL_MAX_*). */
export interface GraphQLLimits {
  maxDepth: number;
  maxAliases: number;
  maxCost: number;
  maxTokens: number;
  maxDirectives: number;
  /** Rows one operation may ask for across all its lists (see list-budget.ts). */
  maxListItems: number;
}

/**
 * graphql-armor's validation rules. Introspection is exempt from the depth limit so GraphiQL
 * and codegen keep working; field suggestions ("Did you mean …?") would let anyone map the
 * schema with introspection off, so production blocks them.
 */
export function useGraphQLLimits(limits: GraphQLLimits, production: boolean): Plugin {
  return EnvelopArmorPlugin({
    maxDepth: { n: limits.maxDepth, ignoreIntrospection: true, flattenFragments: true },
    maxAliases: { n: limits.maxAliases, allowList: [] },
    costLimit: { maxCost: limits.maxCost },
    maxTokens: { n: limits.maxTokens },
    maxDirectives: { n: limits.maxDirectives },
    blockFieldSuggestion: { enabled: production },
  }) as Plugin;
}
