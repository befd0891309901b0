import { z } from 'zod';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { Embedder } from '../providers/embeddings/types.js';
import { type Db, type ScoredMemory, searchLayer } from './store.js';

export interface RecallOptions {
  profileK: number;
  relationshipK: number;
  minScore: number;
}

export interface RecallResult {
  profile: ScoredMemory[];
  relationship: ScoredMemory[];
  /** Set when recall failed and the turn goes on without memories. */
  error?: string;
}

/**
 * Two-layer recall for one turn: the message is embedded once, then both layers are searched
 * concurrently. A failure here must never fail the chat: it degrades to no memories.
 */
export async function recallForTurn(
  deps: { db: Db; embedder: Embedder; logger: Logger; metrics: Metrics },
  scope: { userId: string; instanceId: string },
  text: string,
  options: RecallOptions,
): Promise<RecallResult> {
  try {
    const [embedding] = await deps.embedder.embed([text], 'query');
    if (!embedding) throw new Error('embedder returned no vector');
    const query = { embedding, model: deps.embedder.model, minScore: options.minScore };
    const [profile, relationship] = await Promise.all([
      searchLayer(
        deps.db,
        { userId: scope.userId, instanceId: null },
        { ...query, k: options.profileK },
      ),
      searchLayer(deps.db, scope, { ...query, k: options.relationshipK }),
    ]);
    deps.metrics.recallHits.inc({ layer: 'profile' }, profile.length);
    deps.metrics.recallHits.inc({ layer: 'relationship' }, relationship.length);
    return { profile, relationship };
  } catch (err) {
    deps.metrics.recallFailures.inc();
    deps.logger.warn({ err, userId: scope.userId }, 'recall failed; answering without memories');
    return { profile: [], relationship: [], error: (err as Error).message };
  }
}

const StoredRecallSchema = z.object({
  profile: z.array(z.object({ id: z.string(), score: z.number() })),
  relationship: z.array(z.object({ id: z.string(), score: z.number() })),
});

/** What a reply stores about its recall: ids and scores per layer (messages.recall). */
export type StoredRecall = z.infer<typeof StoredRecallSchema>;

export function toStoredRecall(r: Pick<RecallResult, 'profile' | 'relationship'>): StoredRecall {
  const strip = (list: ScoredMemory[]) => list.map((m) => ({ id: m.memory.id, score: m.score }));
  return { profile: strip(r.profile), relationship: strip(r.relationship) };
}

/** Reads messages.recall back; anything unreadable counts as nothing recalled. */
export function readStoredRecall(json: unknown): StoredRecall {
  const parsed = StoredRecallSchema.safeParse(json);
  return parsed.success ? parsed.data : { profile: [], relationship: [] };
}
