import { z } from 'zod';
import type { Logger } from '../logger.js';
import type { OpenRouterChatModel } from '../providers/llm/openrouter.js';
import type { ChatMessage } from '../providers/llm/types.js';
import { isRealDate, startOfLocalDay, zoneOrUtc } from '../time/zone.js';
import {
  buildExtractionMessages,
  EXTRACTION_PROMPT_VERSION,
  extractionRetryNote,
} from './extraction-prompt.js';
import {
  type ExtractionInput,
  MEMORY_CATEGORIES,
  type MemoryCandidate,
  type MemoryCategory,
  type MemoryExtractor,
} from './types.js';

export interface LlmExtractorOptions {
  /** Only `chat` is needed, so tests and other OpenAI-style clients can stand in. */
  llm: Pick<OpenRouterChatModel, 'chat'>;
  model: string;
  logger: Logger;
  /** Corrective re-asks after an unusable answer (default 1). */
  maxRetries?: number;
  maxTokens?: number;
}

/** Running totals for metrics. Every skipped item or lost turn shows up here and in the logs. */
export interface ExtractionStats {
  /** extract() runs that got an answer. */
  calls: number;
  /** Corrective second calls after an unparseable or all-invalid answer. */
  retries: number;
  /** Items skipped from the answer that was used. */
  invalidItems: number;
  /** Turns that yielded nothing because no answer was valid JSON of the expected shape. */
  unparseable: number;
  /** `supersedes` ids dropped because they were not among the existing memories shown. */
  unknownSupersedes: number;
  /** Items dropped because they repeat an existing memory word for word. */
  echoes: number;
}

const CATEGORY_SET: ReadonlySet<string> = new Set(MEMORY_CATEGORIES);

const itemSchema = z.object({
  content: z.string().trim().min(1),
  category: z
    .string()
    .nullish()
    .transform((c): MemoryCategory => {
      const upper = c?.trim().toUpperCase() ?? '';
      return CATEGORY_SET.has(upper) ? (upper as MemoryCategory) : 'OTHER';
    }),
  layer: z
    .string()
    .trim()
    .toUpperCase()
    .pipe(z.enum(['PROFILE', 'RELATIONSHIP'])),
  // A malformed confidence is not worth losing a memory over.
  confidence: z.unknown().optional().transform(toConfidence),
  supersedes: z.string().trim().nullish().catch(null),
  evidence: z.string().trim().nullish().catch(null),
  // Checked against the calendar in parseAnswer; a bad date costs the date, not the memory.
  occurredAt: z.string().trim().nullish().catch(null),
});
const answerSchema = z.union([z.object({ memories: z.array(z.unknown()) }), z.array(z.unknown())]);

type Attempt =
  | { ok: false; problem: string }
  | { ok: true; items: MemoryCandidate[]; invalid: number; problem: string };

/**
 * Memory extraction with one LLM call per turn. Bad model output never throws: an unusable
 * answer is re-asked once, then valid items are kept and the rest counted. Transport errors
 * (LlmError) do propagate, because the job queue retries those with backoff.
 */
export class LlmExtractor implements MemoryExtractor {
  readonly provider = 'openrouter';
  readonly stats: ExtractionStats = {
    calls: 0,
    retries: 0,
    invalidItems: 0,
    unparseable: 0,
    unknownSupersedes: 0,
    echoes: 0,
  };
  readonly #options: Required<LlmExtractorOptions>;

  constructor(options: LlmExtractorOptions) {
    this.#options = { maxRetries: 1, maxTokens: 1024, ...options };
  }

  async extract(input: ExtractionInput): Promise<MemoryCandidate[]> {
    const messages: ChatMessage[] = buildExtractionMessages(input);
    const { llm, model, maxTokens, maxRetries, logger } = this.#options;
    let retried = 0;
    let attempt: Attempt;
    for (;;) {
      const answer = await llm.chat(messages, {
        model,
        responseFormat: 'json_object',
        temperature: 0,
        maxTokens,
      });
      input.onUsage?.({
        model: answer.model,
        inputTokens: answer.promptTokens,
        outputTokens: answer.completionTokens,
      });
      attempt = parseAnswer(answer.content, zoneOrUtc(input.timeZone));
      const usable = attempt.ok && (attempt.items.length > 0 || attempt.invalid === 0);
      if (usable || retried >= maxRetries) break;
      retried++;
      // The model sees its own answer next to the note; a runaway answer is cut to bound cost.
      messages.push(
        { role: 'assistant', content: answer.content.slice(0, 4_000) },
        { role: 'user', content: extractionRetryNote(attempt.problem) },
      );
    }
    this.stats.calls++;
    this.stats.retries += retried;
    const log = { promptVersion: EXTRACTION_PROMPT_VERSION, model, retried: retried > 0 };
    if (!attempt.ok) {
      this.stats.unparseable++;
      logger.warn({ ...log, problem: attempt.problem }, 'memory extraction answer unusable');
      return [];
    }
    const kept = this.#checkAgainstExisting(attempt.items, input);
    this.stats.invalidItems += attempt.invalid;
    const level = attempt.invalid > 0 || retried > 0 ? 'info' : 'debug';
    logger[level](
      { ...log, kept: kept.length, invalidItems: attempt.invalid },
      'memories extracted',
    );
    return kept;
  }

  /** The model is told the ids and contents; it is not trusted to have used them correctly. */
  #checkAgainstExisting(items: MemoryCandidate[], input: ExtractionInput): MemoryCandidate[] {
    const ids = new Set(input.existing.map((m) => m.id));
    // Per layer: the same words can be a profile fact and, separately, part of one relationship.
    const known = new Set(input.existing.map((m) => `${m.layer}:${normalise(m.content)}`));
    const kept: MemoryCandidate[] = [];
    for (const item of items) {
      if (known.has(`${item.layer}:${normalise(item.content)}`)) {
        this.stats.echoes++;
        continue;
      }
      if (item.supersedes !== undefined && !ids.has(item.supersedes)) {
        this.stats.unknownSupersedes++;
        const { supersedes: _dropped, ...rest } = item;
        kept.push(rest);
        continue;
      }
      kept.push(item);
    }
    return kept;
  }
}

function parseAnswer(text: string, zone: string): Attempt {
  const json = parseLenient(text);
  if (json === undefined) return { ok: false, problem: 'it was not valid JSON' };
  const answer = answerSchema.safeParse(json);
  if (!answer.success) {
    return { ok: false, problem: 'it was not an object of the form {"memories": [...]}' };
  }
  const raw = Array.isArray(answer.data) ? answer.data : answer.data.memories;
  const items: MemoryCandidate[] = [];
  const problems: string[] = [];
  for (const [i, value] of raw.entries()) {
    const item = itemSchema.safeParse(value);
    if (item.success) {
      const { supersedes, evidence, occurredAt: when, ...rest } = item.data;
      const occurredAt = parseOccurredAt(when, zone);
      items.push({
        ...rest,
        ...(supersedes ? { supersedes } : {}),
        ...(evidence ? { evidence } : {}),
        ...(occurredAt ? { occurredAt } : {}),
      });
    } else {
      const issue = item.error.issues[0];
      problems.push(`item ${i} ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`);
    }
  }
  const problem = `these items were invalid: ${problems.slice(0, 3).join('; ')}`;
  return { ok: true, items, invalid: problems.length, problem };
}

/** JSON as models actually send it: sometimes fenced, sometimes wrapped in a sentence. */
function parseLenient(text: string): unknown {
  const trimmed = text.trim();
  const fenced = /```(?:json)?\s*([\s\S]*?)\s*```/i.exec(trimmed)?.[1];
  const start = trimmed.search(/[[{]/);
  const end = Math.max(trimmed.lastIndexOf('}'), trimmed.lastIndexOf(']'));
  const sliced = start >= 0 && end > start ? trimmed.slice(start, end + 1) : undefined;
  for (const candidate of [trimmed, fenced, sliced]) {
    if (candidate === undefined) continue;
    try {
      return JSON.parse(candidate);
    } catch {
      // Not this reading; try the next one.
    }
  }
  return undefined;
}

const LOCAL_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
/** Years a memory's date may fall in; anything else is a model's slip, not a plan. */
const MIN_YEAR = 1900;
const MAX_YEAR = 2200;

/**
 * "YYYY-MM-DD" (the prompt's format: a day in the user's calendar, stored as the start of that
 * day in their zone) or an ISO instant with an explicit offset; anything else is dropped.
 */
export function parseOccurredAt(value: string | null | undefined, zone: string): Date | null {
  if (!value) return null;
  const day = LOCAL_DATE.exec(value);
  if (day) {
    const date = { year: Number(day[1]), month: Number(day[2]), day: Number(day[3]) };
    if (!isRealDate(date) || date.year < MIN_YEAR || date.year > MAX_YEAR) return null;
    return startOfLocalDay(date, zone);
  }
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})$/i.test(value)) {
    return null;
  }
  const instant = new Date(value);
  const year = instant.getUTCFullYear();
  return Number.isNaN(instant.getTime()) || year < MIN_YEAR || year > MAX_YEAR ? null : instant;
}

/** Numbers and numeric strings, clamped to 0..1; anything else gets a middling default. */
function toConfidence(value: unknown): number {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isFinite(n)) return 0.7;
  return Math.min(1, Math.max(0, n));
}

function normalise(text: string): string {
  return text
    .toLowerCase()
    .replace(/\s+/g, ' ')
    .replace(/[.!\s]+$/, '')
    .trim();
}
