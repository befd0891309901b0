/**
 * Prompt size per turn (issue 18): every turn sends the memory sections to the chat model, so
 * they are paid for on every reply. Builds the real prompt (src/chat/prompt.ts, with the
 * per-section budget of src/chat/prompt-budget.ts) for two users and reports its tokens,
 * estimated by the documented rule (characters / 4), and the memory sections' share.
 *
 *   npx tsx bench/prompt-size.ts [--data ../shared/data/locomo-dev.json] [--json out.json]
 *
 * Typical user: memories are LoCoMo's observation sentences (what an extractor writes), the
 * history is the last HISTORY_WINDOW turns of a LoCoMo session (real chat lengths). Heavy user:
 * every recalled memory at MEMORY_MAX_CHARS, user messages of 1000 characters and replies of
 * 2000 (about 500 tokens, half of OPENROUTER_MAX_TOKENS). Both recall full top-k (3 + 8).
 * No database: the prompt is a pure function of what recall returned.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { buildPrompt, memoryLine } from '../src/chat/prompt.js';
import { estimateTokens, fitMemorySections } from '../src/chat/prompt-budget.js';
import { parseEnv } from '../src/env.js';
import type { ScoredMemory } from '../src/memory/store.js';
import { DEFAULT_PERSONAS } from '../src/personas/defaults.js';
import { emitJson, table } from './lib/common.js';

const { values } = parseArgs({
  options: {
    data: { type: 'string', default: '../shared/data/locomo-dev.json' },
    json: { type: 'string' },
  },
});

const env = parseEnv({});
const NOW = new Date('2026-12-03T18:00:00Z');
const DAY = 86_400_000;
const mira = DEFAULT_PERSONAS[0];
if (!mira) throw new Error('no default persona');
const persona = mira;

interface Locomo {
  conversation: Record<string, unknown>;
  observation: Record<string, Record<string, [string, string][]>>;
}

const memory = (content: string, i: number, layer: 'p' | 'r'): ScoredMemory =>
  ({
    score: 1 - i / 20,
    memory: {
      id: `${layer}${i}`,
      content,
      createdAt: new Date(NOW.getTime() - (i + 1) * 9 * DAY),
      occurredAt: i % 3 === 0 ? new Date(NOW.getTime() - i * DAY) : null,
    },
  }) as unknown as ScoredMemory;

interface Turn {
  profile: ScoredMemory[];
  relationship: ScoredMemory[];
  history: { role: 'USER' | 'ASSISTANT'; content: string }[];
  userMessage: string;
}

function measure(turn: Turn, budget: number | null) {
  const recalled = budget === null ? turn : fitMemorySections(turn, budget, NOW, 'Europe/Lisbon');
  const messages = buildPrompt({
    persona,
    profile: recalled.profile,
    relationship: recalled.relationship,
    history: turn.history,
    userMessage: turn.userMessage,
    now: NOW,
    timeZone: 'Europe/Lisbon',
    lastTalkAt: new Date(NOW.getTime() - 2 * DAY),
  });
  const total = messages.reduce((n, m) => n + estimateTokens(m.content), 0);
  const section = (items: readonly ScoredMemory[]) =>
    items.reduce((n, m) => n + estimateTokens(`${memoryLine(m, NOW, 'Europe/Lisbon')}\n`), 0);
  const profile = section(recalled.profile);
  const relationship = section(recalled.relationship);
  return {
    total,
    profile,
    relationship,
    memoryShare: (profile + relationship) / total,
    kept: recalled.profile.length + recalled.relationship.length,
  };
}

async function typicalTurns(): Promise<Turn[]> {
  const data = JSON.parse(await readFile(values.data ?? '', 'utf8')) as Locomo[];
  const turns: Turn[] = [];
  for (const sample of data) {
    const observations = Object.values(sample.observation).flatMap((bySpeaker) =>
      Object.values(bySpeaker).flatMap((list) => list.map(([text]) => text)),
    );
    const sessions = Object.entries(sample.conversation)
      .filter(([k, v]) => /^session_\d+$/.test(k) && Array.isArray(v))
      .map(([, v]) => v as { speaker: string; text: string }[]);
    for (const [s, session] of sessions.entries()) {
      if (session.length < env.HISTORY_WINDOW + 1) continue;
      const speaker = session[0]?.speaker;
      const window = session.slice(0, env.HISTORY_WINDOW + 1);
      const offset = (s * 11) % Math.max(1, observations.length - 11);
      const picked = observations.slice(offset, offset + 11);
      turns.push({
        profile: picked.slice(0, env.RECALL_PROFILE_K).map((c, i) => memory(c, i, 'p')),
        relationship: picked
          .slice(env.RECALL_PROFILE_K, env.RECALL_PROFILE_K + env.RECALL_RELATIONSHIP_K)
          .map((c, i) => memory(c, i, 'r')),
        history: window.slice(0, -1).map((m) => ({
          role: m.speaker === speaker ? ('USER' as const) : ('ASSISTANT' as const),
          content: m.text,
        })),
        userMessage: window.at(-1)?.text ?? '',
      });
    }
  }
  return turns;
}

function heavyTurn(): Turn {
  const text = (n: number, seed: string) =>
    `${seed} `.repeat(Math.ceil(n / (seed.length + 1))).slice(0, n);
  const long = (i: number) => text(env.MEMORY_MAX_CHARS, `remembered detail ${i}`);
  return {
    profile: Array.from({ length: env.RECALL_PROFILE_K }, (_, i) => memory(long(i), i, 'p')),
    relationship: Array.from({ length: env.RECALL_RELATIONSHIP_K }, (_, i) =>
      memory(long(i + 10), i, 'r'),
    ),
    history: Array.from({ length: env.HISTORY_WINDOW }, (_, i) =>
      i % 2 === 0
        ? { role: 'USER' as const, content: text(1000, 'a long message') }
        : { role: 'ASSISTANT' as const, content: text(2000, 'a long reply') },
    ),
    userMessage: text(1000, 'a long message'),
  };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

const typical = await typicalTurns();
const heavy = heavyTurn();
const budgets: (number | null)[] = [null, env.PROMPT_MEMORY_SECTION_TOKENS, 500];
const rows: unknown[][] = [];
const results: unknown[] = [];
for (const budget of budgets) {
  const t = typical.map((turn) => measure(turn, budget));
  const h = measure(heavy, budget);
  const label = budget === null ? 'none' : String(budget);
  const typ = {
    total: Math.round(mean(t.map((x) => x.total))),
    memory: Math.round(mean(t.map((x) => x.profile + x.relationship))),
    share: mean(t.map((x) => x.memoryShare)),
    kept: mean(t.map((x) => x.kept)),
  };
  rows.push(
    [
      `typical (${t.length} turns)`,
      label,
      typ.total,
      typ.memory,
      `${(typ.share * 100).toFixed(0)} %`,
      typ.kept.toFixed(1),
    ],
    [
      'heavy',
      label,
      h.total,
      h.profile + h.relationship,
      `${(h.memoryShare * 100).toFixed(0)} %`,
      h.kept,
    ],
  );
  results.push({ budget, typical: typ, heavy: h });
}
process.stdout.write(
  `${table(['user', 'section budget', 'prompt tokens', 'memory tokens', 'memory share', 'memories kept'], rows)}\n`,
);
await emitJson(
  { benchmark: 'prompt-size', rule: 'tokens = ceil(chars / 4)', results },
  values.json,
);
