/**
 * Scores the offline extractor against the labelled set test/fixtures/offline-extraction.jsonl
 * (shared by bench/offline-extraction.ts and the quality-gate test).
 *
 * Matching rule, per message, one to one (each expected memory matches at most one output):
 * 1. exact: the normalised texts are equal (lower case, anything but letters and digits
 *    collapsed to one space, so "User's" = "user s" and punctuation never counts);
 * 2. fuzzy: otherwise the two word sets have a Jaccard similarity of at least 0.8 and the
 *    same numbers (dates, ages), so "User's dad and User don't talk much" matches "User and
 *    User's dad don't talk much", while "in January 2027" never matches "in 2027".
 * Precision = matched outputs / outputs; recall = matched expected / expected; F1 their
 * harmonic mean. Junk = outputs that are not even a partial version of an expected memory of
 * their message (word-set Jaccard below 0.4 with every one of them, or any output on a message
 * that should give none), over all outputs: a wordier or narrower version of a true fact costs
 * precision, but is not junk.
 */
import { readFileSync } from 'node:fs';
import { OfflineExtractor } from '../../src/memory/extract-offline.js';
import type { ExistingMemory, MemoryCandidate } from '../../src/memory/types.js';

export const FIXTURE_PATH = new URL(
  '../../test/fixtures/offline-extraction.jsonl',
  import.meta.url,
);
/** Every line is said at 10:30 UTC on Thursday 3 December 2026, to persona Mira. */
export const FIXTURE_TIME = new Date('2026-12-03T10:30:00Z');
export const FIXTURE_ZONE = 'Europe/Lisbon';
export const FIXTURE_PERSONA = 'Mira';

export interface FixtureLine {
  kind: string;
  message: string;
  expected: string[];
  timeZone?: string;
  existing?: ExistingMemory[];
  /** Expected memory content → the id of the existing memory it supersedes. */
  supersedes?: Record<string, string>;
}

export function readFixture(path: URL = FIXTURE_PATH): FixtureLine[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as FixtureLine);
}

export function normalise(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
}

function wordSet(text: string): Set<string> {
  return new Set(normalise(text).split(' ').filter(Boolean));
}

function jaccard(a: Set<string>, b: Set<string>): number {
  let shared = 0;
  for (const w of a) if (b.has(w)) shared++;
  const union = a.size + b.size - shared;
  return union === 0 ? 1 : shared / union;
}

const numbers = (s: Set<string>) =>
  [...s]
    .filter((w) => /\d/.test(w))
    .sort()
    .join(' ');

export const FUZZY_MIN = 0.8;
export const JUNK_BELOW = 0.4;

export function matches(output: string, expected: string): boolean {
  if (normalise(output) === normalise(expected)) return true;
  const a = wordSet(output);
  const b = wordSet(expected);
  return numbers(a) === numbers(b) && jaccard(a, b) >= FUZZY_MIN;
}

export interface Counts {
  messages: number;
  expected: number;
  outputs: number;
  matched: number;
  junk: number;
  /** Expected supersedes found with the right id / expected supersedes. */
  supersedesRight: number;
  supersedesExpected: number;
}

export interface LineResult {
  line: FixtureLine;
  outputs: MemoryCandidate[];
  matched: number;
  junk: string[];
  missed: string[];
  extra: string[];
}

export function scoreLine(line: FixtureLine, outputs: MemoryCandidate[]): LineResult {
  const free = [...line.expected];
  const extra: string[] = [];
  const junk: string[] = [];
  let matched = 0;
  for (const out of outputs) {
    const i = free.findIndex((e) => matches(out.content, e));
    if (i >= 0) {
      free.splice(i, 1);
      matched++;
      continue;
    }
    extra.push(out.content);
    const words = wordSet(out.content);
    if (line.expected.every((e) => jaccard(words, wordSet(e)) < JUNK_BELOW)) junk.push(out.content);
  }
  return { line, outputs, matched, junk, missed: free, extra };
}

export async function runFixture(
  lines: FixtureLine[] = readFixture(),
): Promise<{ results: LineResult[]; overall: Counts; byKind: Map<string, Counts> }> {
  const extractor = new OfflineExtractor();
  const results: LineResult[] = [];
  for (const line of lines) {
    const outputs = await extractor.extract({
      userMessage: line.message,
      reply: '',
      priorMessages: [],
      messageTime: FIXTURE_TIME,
      timeZone: line.timeZone ?? FIXTURE_ZONE,
      personaName: FIXTURE_PERSONA,
      existing: line.existing ?? [],
    });
    results.push(scoreLine(line, outputs));
  }
  const overall = emptyCounts();
  const byKind = new Map<string, Counts>();
  for (const r of results) {
    const kind = byKind.get(r.line.kind) ?? emptyCounts();
    byKind.set(r.line.kind, kind);
    for (const c of [overall, kind]) add(c, r);
  }
  return { results, overall, byKind };
}

function emptyCounts(): Counts {
  return {
    messages: 0,
    expected: 0,
    outputs: 0,
    matched: 0,
    junk: 0,
    supersedesRight: 0,
    supersedesExpected: 0,
  };
}

function add(c: Counts, r: LineResult): void {
  c.messages++;
  c.expected += r.line.expected.length;
  c.outputs += r.outputs.length;
  c.matched += r.matched;
  c.junk += r.junk.length;
  for (const [content, id] of Object.entries(r.line.supersedes ?? {})) {
    c.supersedesExpected++;
    if (r.outputs.some((o) => o.supersedes === id && matches(o.content, content))) {
      c.supersedesRight++;
    }
  }
}

export function metrics(c: Counts): {
  precision: number;
  recall: number;
  f1: number;
  junkRate: number;
} {
  // An empty side scores 1: a none-message with no output is perfect on both.
  const precision = c.outputs === 0 ? 1 : c.matched / c.outputs;
  const recall = c.expected === 0 ? 1 : c.matched / c.expected;
  const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
  return { precision, recall, f1, junkRate: c.outputs === 0 ? 0 : c.junk / c.outputs };
}
