import { z } from 'zod';
import type { RawQuery } from '../db/raw.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { Embedder } from '../providers/embeddings/types.js';
import type { FusionSettings } from './fusion.js';
import { type Db, type LayerSizes, type ScoredMemory, searchLayersHybrid } from './store.js';

export interface RecallOptions {
  profileK: number;
  relationshipK: number;
  minScore: number;
  fusion: FusionSettings;
}

export interface RecallResult {
  profile: ScoredMemory[];
  relationship: ScoredMemory[];
  /** Set when recall failed and the turn goes on without memories. */
  error?: string;
}

/** What a turn recalls for: the user's message, and the persona's reply it answers. */
export interface RecallQuery {
  message: string;
  /** The persona's previous reply in this conversation, if any. */
  previousReply?: string | null;
}

/**
 * Characters of the previous reply that go into the query (its end, nearest the message): a
 * reply may be 1024 tokens, and its closing lines are what "how did it go?" answers.
 */
export const RECALL_CONTEXT_CHARS = 600;

/**
 * The recall text of a turn: the conversation, not one message. "How did it go?" shares no
 * word or meaning with the memory it is about; the reply it answers ("Good luck with the
 * interview at the bakery!") does. Reply first, message last, so the message's words are the
 * end of the text the embedder reads.
 */
export function recallText(query: RecallQuery): string {
  const reply = query.previousReply?.trim() ?? '';
  if (!reply) return query.message;
  const tail = reply.length > RECALL_CONTEXT_CHARS ? reply.slice(-RECALL_CONTEXT_CHARS) : reply;
  return `${tail}\n${query.message}`;
}

/**
 * Two-layer recall for one turn: the conversation text (recallText) is embedded once, then
 * both layers are searched in one statement with the hybrid ranking (meaning and words fused,
 * store.ts searchLayersHybrid). A failure here must never fail the chat: it degrades to no
 * memories.
 */
export async function recallForTurn(
  deps: { db: Db | RawQuery; embedder: Embedder; logger: Logger; metrics: Metrics },
  scope: {
    userId: string;
    instanceId: string;
    /** The layers' live memories, if read already: fixes each layer's path (store.ts layerPath). */
    liveRows?: LayerSizes;
  },
  input: RecallQuery,
  options: RecallOptions,
): Promise<RecallResult> {
  try {
    const text = recallText(input);
    const [embedding] = await deps.embedder.embed([text], 'query');
    if (!embedding) throw new Error('embedder returned no vector');
    const query = { embedding, text, model: deps.embedder.model, minScore: options.minScore };
    const [profile = [], relationship = []] = await searchLayersHybrid(
      deps.db,
      [
        {
          scope: { userId: scope.userId, instanceId: null },
          k: options.profileK,
          liveRows: scope.liveRows?.profile,
        },
        {
          scope: { userId: scope.userId, instanceId: scope.instanceId },
          k: options.relationshipK,
          liveRows: scope.liveRows?.relationship,
        },
      ],
      { ...query, k: Math.max(options.profileK, options.relationshipK) },
      options.fusion,
    );
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
