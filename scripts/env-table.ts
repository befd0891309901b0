import { readFileSync, writeFileSync } from 'node:fs';
import { envSchema } from '../src/env.js';

const START = '<!-- env-table:start -->';
const END = '<!-- env-table:end -->';

interface Described {
  description?: string;
  def: { type: string; defaultValue?: unknown; innerType?: Described };
}

function defaultOf(schema: Described): string {
  if (schema.def.type === 'default') {
    const value = schema.def.defaultValue;
    if (Array.isArray(value)) return value.length ? value.join(',') : '(empty)';
    return `\`${String(value)}\``;
  }
  return '—';
}

/** The README's configuration table, generated from the zod schema in src/env.ts. */
export function envTable(): string {
  const rows = Object.entries(envSchema.shape).map(([name, field]) => {
    const schema = field as unknown as Described;
    return `| \`${name}\` | ${defaultOf(schema)} | ${schema.description ?? ''} |`;
  });
  return [START, '| variable | default | meaning |', '| --- | --- | --- |', ...rows, END].join(
    '\n',
  );
}

export function readmeWithTable(readme: string): string {
  const start = readme.indexOf(START);
  const end = readme.indexOf(END);
  if (start < 0 || end < 0) throw new Error('README has no env-table markers');
  return readme.slice(0, start) + envTable() + readme.slice(end + END.length);
}

if (process.argv[1]?.endsWith('env-table.ts')) {
  const file = new URL('../README.md', import.meta.url);
  writeFileSync(file, readmeWithTable(readFileSync(file, 'utf8')));
  process.stdout.write('README.md configuration table written\n');
}
