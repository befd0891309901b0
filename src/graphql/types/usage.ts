import { badInput } from '../../errors.js';
import { topUsersByCost } from '../../usage/ledger.js';
import {
  type BudgetReport,
  type DayUsage,
  type KindUsage,
  type ModelUsage,
  REPORT_DAYS,
  type UsageReport,
  usageReport,
} from '../../usage/report.js';
import { utcDay } from '../../usage/types.js';
import { builder } from '../builder.js';
import type { Context } from '../context.js';
import { connectionOf, offsetCursor, parseOffsetCursor } from '../cursors.js';
import { parseUserId } from '../ids.js';
import { User } from './user.js';

/**
 * What a user costs (src/usage/): `User.usage` (the viewer's own through `viewer`; anyone's for
 * admins, as User is visible only to itself and admins, node(id) included), and for admins
 * `userUsage` and `topUsersByCost`. Token counts are Floats: a sum can pass GraphQL Int's 2^31.
 */

export const UsageKind = builder.enumType('UsageKind', {
  values: {
    CHAT: { description: 'Replies.' },
    EXTRACTION: { description: 'Memory extraction from a turn.' },
    EMBEDDING: {
      description: 'Embedding text: recall queries, extracted and remembered memories.',
    },
  } as const,
});

type Counted = Pick<
  ModelUsage,
  'requests' | 'inputTokens' | 'outputTokens' | 'estimatedRequests' | 'costUsd' | 'unpricedTokens'
>;

const UsageCounts = builder.interfaceRef<Counted>('UsageCounts').implement({
  description: 'Requests and tokens of some usage, with its estimated cost.',
  fields: (t) => ({
    requests: t.exposeInt('requests'),
    inputTokens: t.exposeFloat('inputTokens', {
      description: 'As the provider reported them (words where `estimated`).',
    }),
    outputTokens: t.exposeFloat('outputTokens'),
    estimated: t.boolean({
      description:
        'Some counts are word counts: from an offline provider, or a provider that reported no usage.',
      resolve: (c) => c.estimatedRequests > 0,
    }),
    estimatedCostUsd: t.float({
      nullable: true,
      description:
        'USD from the price table (USAGE_PRICES); null (unknown) when some tokens are of a model without a price.',
      resolve: (c) => c.costUsd,
    }),
    unpricedTokens: t.exposeFloat('unpricedTokens', {
      description: 'Tokens of models without a price, not in estimatedCostUsd.',
    }),
  }),
});

const UsageByModel = builder.objectRef<ModelUsage>('UsageByModel').implement({
  interfaces: [UsageCounts],
  fields: (t) => ({ model: t.exposeString('model') }),
});

const UsageByKind = builder.objectRef<KindUsage>('UsageByKind').implement({
  interfaces: [UsageCounts],
  fields: (t) => ({
    kind: t.field({
      type: UsageKind,
      resolve: (k) => k.kind.toUpperCase() as 'CHAT' | 'EXTRACTION' | 'EMBEDDING',
    }),
    models: t.field({ type: [UsageByModel], resolve: (k) => k.models }),
  }),
});

const UsageDay = builder.objectRef<DayUsage>('UsageDay').implement({
  interfaces: [UsageCounts],
  description: 'One UTC day of usage.',
  fields: (t) => ({
    day: t.exposeString('day', { description: 'The UTC calendar day, YYYY-MM-DD.' }),
    kinds: t.field({
      type: [UsageByKind],
      description: 'Every kind (zeros included): CHAT, EXTRACTION, EMBEDDING.',
      resolve: (d) => d.kinds,
    }),
  }),
});

const UsageBudget = builder.objectRef<BudgetReport>('UsageBudget').implement({
  description: 'A daily budget and how much of it is used today (UTC).',
  fields: (t) => ({
    tokenLimit: t.float({ nullable: true, resolve: (b) => b.limit.tokens }),
    costLimitUsd: t.float({ nullable: true, resolve: (b) => b.limit.costUsd }),
    tokensUsed: t.exposeFloat('tokensUsed'),
    costUsedUsd: t.exposeFloat('costUsedUsd', { description: 'Priced models only.' }),
    exceeded: t.exposeBoolean('exceeded'),
    resetsAt: t.expose('resetsAt', { type: 'DateTime', description: 'The next 00:00 UTC.' }),
  }),
});

const Usage = builder.objectRef<UsageReport>('Usage').implement({
  description: `A user's usage: today and the last ${REPORT_DAYS} UTC days, and today's budgets.`,
  fields: (t) => ({
    today: t.field({ type: UsageDay, resolve: (u) => u.today }),
    days: t.field({
      type: [UsageDay],
      description: `Days with usage among the last ${REPORT_DAYS} (today included), newest first.`,
      resolve: (u) => u.days,
    }),
    chatBudget: t.field({
      type: UsageBudget,
      nullable: true,
      description: 'Null when no chat budget is set.',
      resolve: (u) => u.chatBudget,
    }),
    memoryBudget: t.field({
      type: UsageBudget,
      nullable: true,
      description: 'Extraction and embedding; null when no memory budget is set.',
      resolve: (u) => u.memoryBudget,
    }),
  }),
});

const reportOf = (ctx: Context, userId: string) =>
  usageReport(ctx.prisma, ctx.services.usage, userId, ctx.services.now());

// On User, whose type scope admits only the user itself and admins.
builder.prismaObjectField(User, 'usage', (t) =>
  t.field({
    type: Usage,
    description: `Usage and estimated cost: today and the last ${REPORT_DAYS} UTC days, by kind.`,
    resolve: (user, _args, ctx) => reportOf(ctx, user.id),
  }),
);

const TopUser = builder
  .objectRef<Counted & { userId: string; user: typeof User.$inferType | null }>('UserCost')
  .implement({
    interfaces: [UsageCounts],
    fields: (t) => ({
      userId: t.exposeID('userId', { description: 'The raw user UUID.' }),
      user: t.field({
        type: User,
        nullable: true,
        description: 'Null if erased since.',
        resolve: (c) => c.user,
      }),
    }),
  });

const TopUserConnection = builder.connectionObject(
  { type: TopUser, name: 'UserCostConnection' },
  { name: 'UserCostEdge' },
);

const MAX_PAGE = 100;
/** Offsets past this are refused: a ranking is for its top, not for a full walk. */
const MAX_OFFSET = 10_000;

builder.queryFields((t) => ({
  userUsage: t.field({
    type: Usage,
    authScopes: { admin: true },
    description: "Any user's usage (admin).",
    args: { userId: t.arg.id({ required: true, description: 'A User id or the raw UUID.' }) },
    resolve: (_root, args, ctx) => reportOf(ctx, parseUserId(String(args.userId), 'userId')),
  }),
  topUsersByCost: t.field({
    type: TopUserConnection,
    authScopes: { admin: true },
    description:
      'Users by estimated cost over the last `days` UTC days (1: today), most expensive first; users whose usage has no price rank after the priced ones, by tokens (admin).',
    args: {
      days: t.arg.int({ required: false, description: `1-${REPORT_DAYS}, default 1 (today).` }),
      first: t.arg.int({ required: false, description: `1-${MAX_PAGE}, default 20.` }),
      after: t.arg.string({ required: false }),
    },
    resolve: async (_root, args, ctx) => {
      const days = args.days ?? 1;
      if (days < 1 || days > REPORT_DAYS) {
        throw badInput(`days must be 1-${REPORT_DAYS}.`, { field: 'days' });
      }
      const first = args.first ?? 20;
      if (first < 1 || first > MAX_PAGE) {
        throw badInput(`first must be 1-${MAX_PAGE}.`, { field: 'first' });
      }
      ctx.listBudget.charge(first);
      const offset = args.after ? parseOffsetCursor(args.after) + 1 : 0;
      if (offset > MAX_OFFSET) throw badInput('Invalid cursor.', { field: 'after' });
      const now = ctx.services.now();
      const window = {
        fromDay: utcDay(new Date(now.getTime() - (days - 1) * 86_400_000)),
        toDay: utcDay(now),
      };
      const rows = await topUsersByCost(ctx.prisma, ctx.services.usage.prices, window, {
        limit: first + 1,
        offset,
      });
      const page = rows.slice(0, first);
      const users = await ctx.prisma.user.findMany({
        where: { id: { in: page.map((r) => r.userId) } },
      });
      const byId = new Map(users.map((u) => [u.id, u]));
      const edges = page.map((r, i) => ({
        node: {
          ...r,
          estimatedRequests: 0,
          costUsd: r.unpricedTokens > 0 ? null : (r.costUsd ?? 0),
          user: byId.get(r.userId) ?? null,
        },
        cursor: offsetCursor(offset + i),
      }));
      return connectionOf(edges, rows.length > first, args.after);
    },
  }),
}));
