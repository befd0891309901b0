/**
 * Companion evaluation (README "Time and follow-ups", BENCHMARKS.md §7): scripted users talk
 * to the personas over several sessions through the public GraphQL API (createApp → fetch, the
 * same yoga app the server runs), on the offline stack (local embedder, offline companion and
 * extractor) with a manual clock, and each check reports how many of N users pass:
 *
 * - recall:       facts told in session 1 come back a week later (session 5) to a related question;
 * - correction:   after "I moved to <B>", a question about home recalls B and not the old A;
 * - isolation:    what a user and one persona share never reaches another persona;
 * - follow-up:    an event told on Tuesday "on Friday" is not asked about on Friday 23:30 in the
 *                 user's zone, is asked once on Saturday, and not again on the next turn;
 * - when-told:    "when did I tell you about X?" answers with the day it was told (user's zone).
 *
 * Scripts come from templates and a seed (names, places, jobs, zones, times of day vary):
 *
 *   npx tsx bench/companion-eval.ts [--users 20] [--seed 1] [--transcript] [--json out.json]
 *     [--max-seconds 1800]
 *   bash scripts/ci/with-postgres.sh sh -c 'npx tsx bench/companion-eval.ts --database-url "$PG_ADMIN_URL"'
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { createApp } from '../src/app.js';
import { createVerifier, mintToken } from '../src/auth/tokens.js';
import { createServices, createWorker, graphqlLimitsFrom } from '../src/composition.js';
import { parseEnv } from '../src/env.js';
import { silentLogger } from '../src/logger.js';
import { DEFAULT_PERSONAS } from '../src/personas/defaults.js';
import { upsertPersonas } from '../src/personas/seed.js';
import { createProviders } from '../src/providers/index.js';
import { ManualClock } from '../src/time/clock.js';
import {
  addDays,
  type LocalDate,
  localDateOf,
  shortDate,
  startOfLocalDay,
} from '../src/time/zone.js';
import { PERSONAS, SEND_MESSAGE, START_CHAT } from '../test/helpers/operations.js';
import { deadline, emitJson, intArg, log, machineInfo, mulberry32, table } from './lib/common.js';
import { createScratchDatabase, databaseUrlFrom, openBenchDatabase } from './lib/db.js';

const JWT_SECRET = 'eval-secret-that-is-long-enough-for-hs256-0123456789';
const HOUR = 3_600_000;

const NAMES = ['Ana', 'Bruno', 'Chloé', 'Dmitri', 'Esi', 'Farid', 'Greta', 'Hiro', 'Inès', 'Jonas'];
const CITIES = [
  'Lisbon',
  'Porto',
  'Auckland',
  'Osaka',
  'Denver',
  'Lyon',
  'Tartu',
  'Accra',
  'Quito',
];
const JOBS = ['nurse', 'carpenter', 'pilot', 'librarian', 'chemist', 'baker', 'architect'];
const HOBBIES = ['rock climbing', 'watercolour painting', 'sourdough baking', 'chess', 'surfing'];
const EVENTS = ['job interview', 'driving test', 'dentist appointment', 'piano recital', 'exam'];
const JOKES = ['penguins', 'broccoli', 'time travel', 'haunted toasters', 'pirate accents'];
const ZONES = [
  'Pacific/Auckland',
  'America/Los_Angeles',
  'Europe/Lisbon',
  'Asia/Tokyo',
  'UTC',
  'America/Sao_Paulo',
  'Asia/Kolkata',
];

interface Script {
  name: string;
  zone: string;
  home: string;
  moved: string;
  job: string;
  hobby: string;
  event: string;
  joke: string;
  /** Tuesday of week 1, in the user's calendar. */
  tuesday: LocalDate;
  /** Hour of the first session, local. */
  hour: number;
}

function scripts(n: number, seed: number): Script[] {
  const rnd = mulberry32(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rnd() * list.length)] as T;
  // A Tuesday within a year of 2026-11-03 (itself a Tuesday).
  const firstTuesday: LocalDate = { year: 2026, month: 11, day: 3 };
  return Array.from({ length: n }, () => {
    const home = pick(CITIES);
    let moved = pick(CITIES);
    while (moved === home) moved = pick(CITIES);
    return {
      name: pick(NAMES),
      zone: pick(ZONES),
      home,
      moved,
      job: pick(JOBS),
      hobby: pick(HOBBIES),
      event: pick(EVENTS),
      joke: pick(JOKES),
      tuesday: addDays(firstTuesday, 7 * Math.floor(rnd() * 52)),
      hour: 8 + Math.floor(rnd() * 15),
    };
  });
}

interface TurnData {
  reply: { content: string };
  recalled: {
    profile: { memory: { content: string } }[];
    relationship: { memory: { content: string } }[];
  };
}

const CHECKS = ['recall', 'correction', 'isolation', 'follow-up', 'when-told'] as const;
type Check = (typeof CHECKS)[number];

async function main() {
  const { values } = parseArgs({
    options: {
      users: { type: 'string' },
      seed: { type: 'string' },
      'database-url': { type: 'string' },
      transcript: { type: 'boolean', default: false },
      json: { type: 'string' },
      'max-seconds': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'npx tsx bench/companion-eval.ts [--users 20] [--seed 1] [--database-url URL] ' +
        '[--transcript] [--json out.json] [--max-seconds 1800]\n',
    );
    return;
  }
  deadline(intArg(values['max-seconds'], 1800, 'max-seconds'), 'companion-eval');
  const users = intArg(values.users, 20, 'users');
  const seed = intArg(values.seed, 1, 'seed');
  const adminUrl = databaseUrlFrom(values['database-url']);
  const scratch = adminUrl ? await createScratchDatabase(adminUrl, 'companion_eval') : null;
  const bench = await openBenchDatabase({ url: scratch?.url, poolSize: 4 });
  const clock = new ManualClock(new Date('2026-11-03T09:00:00Z'));
  try {
    await upsertPersonas(bench.db.prisma, DEFAULT_PERSONAS);
    const env = parseEnv({
      NODE_ENV: 'test',
      JWT_SECRET,
      WORKER_ENABLED: 'false',
      CHAT_TURNS_PER_MINUTE: '10000',
      CHAT_STARTS_PER_MINUTE: '10000',
      CHAT_MAX_CONCURRENT_TURNS: '100',
      MEMORY_EMBEDS_PER_MINUTE: '10000',
      MEMORY_WRITES_PER_MINUTE: '10000',
    });
    const services = createServices(
      env,
      bench.db,
      silentLogger,
      createProviders(env, silentLogger),
      { now: clock.now },
    );
    const worker = createWorker(env, services);
    const auth = { secret: JWT_SECRET, adminUserIds: [] };
    const app = createApp({
      services,
      verifyToken: createVerifier(auth),
      production: false,
      limits: graphqlLimitsFrom(env),
    });
    const gql = async <T>(query: string, variables: Record<string, unknown>, token: string) => {
      const res = await app.fetch('http://eval/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query, variables }),
      });
      const json = (await res.json()) as { data?: T; errors?: unknown[] };
      if (json.errors?.length || !json.data) throw new Error(JSON.stringify(json.errors));
      return json.data;
    };
    const drain = async () => {
      while ((await worker.runOnce()) > 0) {}
    };

    const passed: Record<Check, number> = {
      recall: 0,
      correction: 0,
      isolation: 0,
      'follow-up': 0,
      'when-told': 0,
    };
    const failures: { user: number; check: Check; detail: string }[] = [];
    const transcript: string[] = [];
    const all = scripts(users, seed);
    for (const [i, s] of all.entries()) {
      const token = await mintToken(auth, {
        sub: randomUUID(),
        zoneinfo: s.zone,
        expiresIn: '1h',
      });
      const personas = await gql<{ personas: { edges: { node: { id: string; slug: string } }[] } }>(
        PERSONAS,
        {},
        token,
      );
      const id = (slug: string) =>
        personas.personas.edges.find((e) => e.node.slug === slug)?.node.id ?? '';
      const start = async (slug: string) =>
        (
          await gql<{ startChat: { session: { id: string } } }>(
            START_CHAT,
            { personaId: id(slug) },
            token,
          )
        ).startChat.session.id;
      const at = (day: LocalDate, hour: number, minute = 0) =>
        clock.set(new Date(startOfLocalDay(day, s.zone).getTime() + hour * HOUR + minute * 60_000));
      const say = async (session: string, content: string, persona: string) => {
        const turn = await gql<{ sendMessage: TurnData }>(
          SEND_MESSAGE,
          { sessionId: session, content, clientMessageId: randomUUID() },
          token,
        );
        if (values.transcript && i === 0) {
          const when = localDateOf(new Date(clock.now().getTime()), s.zone);
          transcript.push(`[${shortDate(when)} ${s.zone}] ${s.name}: ${content}`);
          transcript.push(`  ${persona}: ${turn.sendMessage.reply.content}`);
        }
        return turn.sendMessage;
      };
      const check = (name: Check, ok: boolean, detail: string) => {
        if (ok) passed[name]++;
        else failures.push({ user: i, check: name, detail });
      };

      // Session 1, Tuesday: facts, a plan for Friday, a joke shared with Mira.
      at(s.tuesday, s.hour);
      const mira = await start('mira');
      await say(mira, `Hi, I'm ${s.name}.`, 'Mira');
      await say(mira, `I work as a ${s.job}.`, 'Mira');
      await say(mira, `I live in ${s.home}.`, 'Mira');
      await say(mira, `I love ${s.hobby}.`, 'Mira');
      await say(mira, `I have a ${s.event} on Friday.`, 'Mira');
      await say(mira, `We laughed about your jokes about ${s.joke}.`, 'Mira');
      await drain();

      // Session 2, Friday 23:30 in the user's zone: the event's day has not passed.
      const friday = addDays(s.tuesday, 3);
      at(friday, 23, 30);
      const early = await say(await start('mira'), 'Hello, still up late.', 'Mira');
      await drain();
      // Session 3, Saturday morning: due. Asked once, not on the next turn.
      at(addDays(friday, 1), 9);
      const mira3 = await start('mira');
      const asked = await say(mira3, 'Good morning!', 'Mira');
      const again = await say(mira3, 'It went well, thanks for asking.', 'Mira');
      const asks = (text: string) => /How did it go\?/.test(text);
      check(
        'follow-up',
        !asks(early.reply.content) &&
          asks(asked.reply.content) &&
          asked.reply.content.includes(s.event) &&
          !asks(again.reply.content),
        `early=${asks(early.reply.content)} asked=${asked.reply.content} again=${asks(again.reply.content)}`,
      );
      await say(mira3, `I moved to ${s.moved}.`, 'Mira');
      await drain();

      // Session 4, Sunday, another persona: nothing of what Mira and the user share.
      at(addDays(friday, 2), 11);
      const rook = await start('rook');
      const other = [
        await say(rook, 'Hello Rook, what do you remember about us?', 'Rook'),
        await say(rook, `Do you like jokes about ${s.joke}?`, 'Rook'),
      ];
      const leaked = other.some(
        (t) =>
          t.recalled.relationship.length > 0 ||
          t.recalled.profile.some((m) => /\bMira\b/.test(m.memory.content)) ||
          t.reply.content.includes(s.joke),
      );
      check('isolation', !leaked, JSON.stringify(other.map((t) => t.recalled)));
      await drain();

      // Session 5, Tuesday a week later.
      at(addDays(s.tuesday, 7), s.hour);
      const mira5 = await start('mira');
      const job = await say(mira5, 'What do I do for work?', 'Mira');
      const recalled = (t: TurnData) =>
        [...t.recalled.profile, ...t.recalled.relationship].map((m) => m.memory.content);
      check(
        'recall',
        recalled(job).some((c) => c.includes(s.job)),
        recalled(job).join(' | '),
      );
      const home = await say(mira5, 'Where do I live these days?', 'Mira');
      const homes = recalled(home);
      check(
        'correction',
        homes.some((c) => c.includes(s.moved)) && !homes.some((c) => c.includes(s.home)),
        homes.join(' | '),
      );
      const when = await say(mira5, `When did I tell you about ${s.hobby}?`, 'Mira');
      const toldDay = shortDate(s.tuesday, addDays(s.tuesday, 7));
      check(
        'when-told',
        when.reply.content.includes(s.hobby) && when.reply.content.includes(toldDay),
        `${toldDay}: ${when.reply.content}`,
      );
      log(`user ${i + 1}/${users} (${s.zone})`);
    }

    const rows = CHECKS.map((c) => [c, `${passed[c]}/${users}`]);
    process.stdout.write(
      `\nCompanion evaluation: ${users} scripted users, seed ${seed}, ${bench.kind} ${bench.server.version}\n\n`,
    );
    process.stdout.write(`${table(['check', 'users passing'], rows)}\n`);
    if (values.transcript)
      process.stdout.write(`\nTranscript of user 1:\n${transcript.join('\n')}\n`);
    if (failures.length) {
      process.stdout.write('\nFirst failures:\n');
      for (const f of failures.slice(0, 8)) {
        process.stdout.write(`- user ${f.user + 1} ${f.check}: ${f.detail.slice(0, 300)}\n`);
      }
    }
    await emitJson(
      { machine: machineInfo(), users, seed, database: bench.kind, passed, failures },
      values.json,
    );
  } finally {
    await bench.close();
    await scratch?.drop();
  }
}

await main();
