import type { PrismaClient } from '@prisma/client';
import type { Viewer } from '../auth/tokens.js';
import type { Services } from '../services.js';
import type { ListBudget } from './list-budget.js';

/** Per request, read-only. Clients come from `services`, built once at boot. */
export interface Context {
  readonly viewer: Viewer | null;
  readonly requestId: string;
  readonly services: Services;
  readonly prisma: PrismaClient;
  /** Rows this operation may still ask for across its lists. */
  readonly listBudget: ListBudget;
}
