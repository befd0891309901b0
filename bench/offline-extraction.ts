/**
 * Quality of the offline (rule-based) extractor on the labelled set
 * test/fixtures/offline-extraction.jsonl: precision, recall, F1 and junk rate, overall and per
 * message kind, and how many moves / job changes supersede the old memory. The matching rule
 * is documented in bench/lib/extraction-score.ts. Deterministic and CPU-light (no database,
 * no embedder): the numbers do not depend on machine load.
 *
 *   npx tsx bench/offline-extraction.ts            # table
 *   npx tsx bench/offline-extraction.ts --verbose  # plus every miss and extra output
 *   npx tsx bench/offline-extraction.ts --json out.json
 *   npx tsx bench/offline-extraction.ts --fixture test/fixtures/offline-extraction-holdout.jsonl
 */

import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { emitJson, log, table } from './lib/common.js';
import { type Counts, metrics, readFixture, runFixture } from './lib/extraction-score.js';

const { values } = parseArgs({
  options: {
    verbose: { type: 'boolean', default: false },
    json: { type: 'string' },
    fixture: { type: 'string' },
  },
});

const { results, overall, byKind } = await runFixture(
  values.fixture ? readFixture(pathToFileURL(values.fixture)) : undefined,
);
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const row = (name: string, c: Counts) => {
  const m = metrics(c);
  return [
    name,
    String(c.messages),
    String(c.expected),
    String(c.outputs),
    String(c.matched),
    m.precision.toFixed(3),
    m.recall.toFixed(3),
    m.f1.toFixed(3),
    pct(m.junkRate),
  ];
};
const kinds = [...byKind.entries()].sort(([a], [b]) => a.localeCompare(b));
log(
  table(
    ['kind', 'messages', 'expected', 'outputs', 'matched', 'precision', 'recall', 'F1', 'junk'],
    [...kinds.map(([kind, c]) => row(kind, c)), row('overall', overall)],
  ),
);
log(`supersedes: ${overall.supersedesRight}/${overall.supersedesExpected} right`);
if (values.verbose) {
  for (const r of results) {
    if (r.missed.length === 0 && r.extra.length === 0) continue;
    log(`\n[${r.line.kind}] ${r.line.message}`);
    for (const m of r.missed) log(`  - missed: ${m}`);
    for (const e of r.extra) log(`  + ${r.junk.includes(e) ? 'JUNK' : 'extra'}: ${e}`);
  }
}
await emitJson(
  {
    overall: { ...overall, ...metrics(overall) },
    byKind: Object.fromEntries(kinds.map(([k, c]) => [k, { ...c, ...metrics(c) }])),
  },
  values.json,
);
