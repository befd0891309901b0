import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { isExtractionRequest } from './fakes/extraction.js';
import {
  type ChatBody,
  type OpenRouterFake,
  startOpenRouterFake,
} from './fakes/openrouter-fake.js';
import { startVoyageFake } from './fakes/voyage-fake.js';
import { createTestContext, type TestContext } from './helpers/app.js';
import { personaIds, send, startChat } from './helpers/chat.js';
import { tier } from './helpers/database.js';
import { fakeProviderEnv } from './helpers/providers.js';
import { within } from './helpers/wait.js';

/*
 * The job queue with real worker processes (`npm run worker`) on real Postgres: a worker
 * killed mid-batch loses and duplicates nothing, several workers never run one job twice, and
 * SIGTERM drains or hands back in-flight jobs. Postgres tier only: PGlite is one process's
 * database, so no second process could share it.
 *
 * Every turn says "My code words are <five random tokens>." and the fake model extracts
 * exactly one memory from it, so each turn's memory is known and countable.
 */

const REPO = fileURLToPath(new URL('..', import.meta.url));

const WORDS = /My code words are ([0-9a-f ]+)\./;
// Jobs of the crash and concurrency tests: enough for several batches per worker.
const USERS = 4;
const TURNS_PER_USER = 10;
const N = USERS * TURNS_PER_USER;
// Bounds on waits for what takes longer on a busy machine — a worker process booting through
// tsx, a batch of jobs finishing. They catch a hang; they do not measure speed (under
// `stress-ng --cpu 2` beside other suites, three workers booting at once took over 20 s).
const BOOT_MS = 120_000;
const RUN_MS = 120_000;
// A test boots up to three processes and waits for batches of jobs (see above).
vi.setConfig({ testTimeout: 400_000 });

interface Turn {
  userId: string;
  words: string;
}
type JobStatus = 'PENDING' | 'RUNNING' | 'DONE' | 'DEAD';
interface JobState {
  id: string;
  status: JobStatus;
  attempts: number;
  /** The code words of the job's turn. */
  words: string;
}
interface WorkerProcess {
  name: string;
  /** stdout and stderr lines, printed when a test fails. */
  output: string[];
  /** Resolves with the worker's id once it is claiming jobs. */
  ready: Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal: NodeJS.Signals): void;
}

const memoryOf = (words: string) => `User's code words are ${words}`;
// Random tokens: memories of two turns share too few words to be taken for near-duplicates.
const codeWords = () => Array.from({ length: 5 }, () => randomBytes(3).toString('hex')).join(' ');

/** The turn being extracted is the <user_message> block; earlier turns appear only as context. */
function wordsOf(body: ChatBody): string | null {
  const data = body.messages[1]?.content ?? '';
  return new RegExp(`<user_message>\\s*${WORDS.source}`).exec(data)?.[1] ?? null;
}

function respond(body: ChatBody): string {
  if (!isExtractionRequest(body)) return 'Noted, I will remember that.';
  const words = wordsOf(body);
  const memory = { category: 'fact', layer: 'PROFILE', confidence: 0.9 };
  return JSON.stringify({ memories: words ? [{ content: memoryOf(words), ...memory }] : [] });
}

describe.runIf(tier === 'postgres')('worker processes on one Postgres', () => {
  let t: TestContext;
  let openrouter: OpenRouterFake;
  let providerEnv: Record<string, string>;
  let workers: WorkerProcess[] = [];
  const cleanups: (() => Promise<unknown>)[] = [];

  beforeEach(async ({ onTestFailed }) => {
    workers = [];
    onTestFailed(() => {
      for (const w of workers)
        console.error(`--- ${w.name} ---\n${w.output.slice(-40).join('\n')}`);
    });
    const voyage = await startVoyageFake();
    cleanups.push(() => voyage.close());
    openrouter = await startOpenRouterFake({ responder: respond });
    cleanups.push(() => openrouter.close());
    // No retries: a second request for one turn must mean the job ran twice, not a retry.
    providerEnv = {
      ...fakeProviderEnv({ voyage, openrouter }),
      VOYAGE_TIMEOUT_MS: '5000',
      VOYAGE_MAX_RETRIES: '0',
      OPENROUTER_TIMEOUT_MS: '5000',
      OPENROUTER_MAX_RETRIES: '0',
    };
    t = await createTestContext({ env: providerEnv });
    cleanups.push(() => t.close());
  });

  // Child processes first (pushed last), then the database, then the fakes; all of them even
  // when one fails.
  afterEach(async () => {
    const errors: unknown[] = [];
    for (const cleanup of cleanups.splice(0).reverse()) {
      await cleanup().catch((err: unknown) => errors.push(err));
    }
    if (errors.length > 0) throw errors[0];
  });

  /** `npm run worker` as a real child process, configured only by the env given here. */
  function startWorker(name: string, env: Record<string, string>): WorkerProcess {
    if (!t.database.url) throw new Error('the Postgres tier gives each test a database URL');
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/worker-main.ts'], {
      cwd: REPO,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        TMPDIR: process.env.TMPDIR,
        NODE_ENV: 'test',
        // info: the "worker started" line tells us it is up and what its id is.
        LOG_LEVEL: 'info',
        DATABASE_URL: t.database.url,
        DATABASE_POOL_SIZE: '5',
        WORKER_POLL_MS: '50',
        JOB_RETRY_BASE_MS: '0',
        ...providerEnv,
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output: string[] = [];
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    const ready = new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout }).on('line', (line) => {
        output.push(line);
        const id = startedWorkerId(line);
        if (id) resolve(id);
      });
      createInterface({ input: child.stderr }).on('line', (line) => output.push(line));
      void exited.then((e) => reject(new Error(`${name} exited (${e.signal ?? e.code}) early`)));
    });
    ready.catch(() => {}); // a test that needs it awaits it; an early exit must not go unhandled
    // Should this test process exit without its afterEach (e.g. a crash), take the child along.
    const killOnExit = () => child.kill('SIGKILL');
    process.once('exit', killOnExit);
    void exited.then(() => process.off('exit', killOnExit));
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await within(exited, 5_000, `${name} to exit`);
    });
    const worker = { name, output, ready, exited, kill: (s: NodeJS.Signals) => child.kill(s) };
    workers.push(worker);
    return worker;
  }

  /** `users` users with one chat each, `perUser` turns each: one extraction job per turn. */
  async function createTurns(users: number, perUser: number): Promise<Turn[]> {
    const perUserTurns = await Promise.all(
      Array.from({ length: users }, async () => {
        const user = await t.newUser();
        const { mira } = await personaIds(t, user.token);
        const { sessionId } = await startChat(t, user.token, mira as string);
        const turns: Turn[] = [];
        for (let i = 0; i < perUser; i++) {
          const words = codeWords();
          await send(t, user.token, sessionId, `My code words are ${words}.`);
          turns.push({ userId: user.id, words });
        }
        return turns;
      }),
    );
    const turns = perUserTurns.flat();
    expect(await t.services.prisma.job.count({ where: { status: 'PENDING' } })).toBe(turns.length);
    return turns;
  }

  async function jobStates(): Promise<JobState[]> {
    const rows = await t.services.prisma.$queryRaw<(Omit<JobState, 'words'> & { m: string })[]>`
      SELECT j.id, j.status::text AS status, j.attempts, u.content AS m
      FROM jobs j
      JOIN messages r ON r.id = (j.payload->>'replyId')::uuid
      JOIN messages u ON u.id = r.reply_to_id
      ORDER BY j.created_at, j.id`;
    return rows.map(({ m, ...job }) => ({ ...job, words: WORDS.exec(m)?.[1] ?? m }));
  }

  /** Jobs per status: a cheap query, since the tests poll it while the workers run. */
  async function jobCounts(): Promise<Record<JobStatus, number>> {
    const rows = await t.services.prisma.job.groupBy({ by: ['status'], _count: { _all: true } });
    const n: Record<JobStatus, number> = { PENDING: 0, RUNNING: 0, DONE: 0, DEAD: 0 };
    for (const row of rows) n[row.status] = row._count._all;
    return n;
  }

  function waitForJobs(what: string, ms: number, done: (n: Record<JobStatus, number>) => boolean) {
    return waitUntil(what, ms, jobCounts, done);
  }

  /** Waits until no job is left to run, then returns them all. */
  async function allFinished(total: number, ms: number): Promise<JobState[]> {
    await waitForJobs('every job to finish', ms, (n) => n.DONE + n.DEAD === total);
    return jobStates();
  }

  /** Extraction calls the fake has received, per turn. */
  function extractionCalls(): Map<string, number> {
    const calls = new Map<string, number>();
    for (const { body } of openrouter.requests) {
      if (!body || !isExtractionRequest(body)) continue;
      const words = wordsOf(body) ?? '(unknown turn)';
      calls.set(words, (calls.get(words) ?? 0) + 1);
    }
    return calls;
  }

  const totalCalls = () => [...extractionCalls().values()].reduce((a, b) => a + b, 0);

  /** Every turn's memory, exactly once, with one ADDED history row each. */
  async function expectEachMemoryOnce(turns: Turn[]) {
    const rows = await t.services.prisma.memory.findMany({
      select: { userId: true, content: true },
    });
    expect(rows.map((r) => `${r.userId} ${r.content}`).sort()).toEqual(
      turns.map((x) => `${x.userId} ${memoryOf(x.words)}`).sort(),
    );
    const added = await t.services.prisma.memoryHistory.count({ where: { action: 'ADDED' } });
    expect(added).toBe(turns.length);
  }

  /** Which worker wrote each job's memory: jobs.locked_by is cleared on completion. */
  async function writerByJob(): Promise<Map<string, string | null>> {
    const rows = await t.services.prisma.memoryHistory.findMany({
      where: { action: 'ADDED' },
      select: { jobId: true, actorId: true },
    });
    return new Map(rows.map((r) => [r.jobId ?? '', r.actorId]));
  }

  /**
   * Postgres rolls back a dead client's transactions only once it notices the closed socket:
   * wait for that, so the jobs table shows exactly what the killed worker left behind.
   */
  async function settleAfterKill() {
    await waitUntil(
      "the killed worker's sessions to end",
      5_000,
      async () => {
        const [row] = await t.services.prisma.$queryRaw<{ n: bigint }[]>`
          SELECT count(*) AS n FROM pg_stat_activity
          WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'`;
        return Number(row?.n ?? 0);
      },
      (busy) => busy === 0,
    );
  }

  it('a worker killed mid-batch loses nothing: a new worker takes over its claims, and every memory is written once', async () => {
    const began = Date.now();
    openrouter.setDelay((body) => (isExtractionRequest(body) ? 200 : 0));
    const turns = await createTurns(USERS, TURNS_PER_USER);
    // A short lease, so worker B takes over the dead worker's claims within the test. Worker B
    // renews its own leases while it works, so however slow its jobs get on a busy machine it
    // never takes them for stale ones (with a fixed claim timeout it did: attempts 3, not 2).
    const config = { WORKER_CONCURRENCY: '4', JOB_LEASE_MS: '3000' };

    const doomed = startWorker('worker A', config);
    const doomedId = await within(doomed.ready, BOOT_MS, 'worker A to start');
    await waitForJobs('worker A to be mid-batch', RUN_MS, (n) => n.DONE >= 8 && n.RUNNING > 0);
    doomed.kill('SIGKILL');
    expect(await within(doomed.exited, 5_000, 'worker A to die')).toEqual({
      code: null,
      signal: 'SIGKILL',
    });
    await settleAfterKill();
    const atKill = await jobStates();
    const left = tally(atKill);
    expect(left.RUNNING).toBeGreaterThan(0);
    expect(left.PENDING).toBeGreaterThan(0);
    // Results commit with the job's completion: exactly the finished turns are remembered.
    expect(await t.services.prisma.memory.count()).toBe(left.DONE);

    const takeover = Date.now();
    const rescuer = startWorker('worker B', config);
    const rescuerId = await within(rescuer.ready, BOOT_MS, 'worker B to start');
    const final = await allFinished(N, RUN_MS);
    const takeoverMs = Date.now() - takeover;

    expect(tally(final)).toEqual({ PENDING: 0, RUNNING: 0, DONE: N, DEAD: 0 });
    await expectEachMemoryOnce(turns);
    // The jobs in flight at the kill were claimed again once their lease lapsed (attempt 2);
    // no other job ran twice. Worker A wrote what it finished, worker B everything else.
    const before = new Map(atKill.map((j) => [j.id, j.status]));
    const writers = await writerByJob();
    expect(
      final.map((j) => ({ words: j.words, attempts: j.attempts, by: writers.get(j.id) })),
    ).toEqual(
      final.map((j) => ({
        words: j.words,
        attempts: before.get(j.id) === 'RUNNING' ? 2 : 1,
        by: before.get(j.id) === 'DONE' ? doomedId : rescuerId,
      })),
    );
    // A killed job's extraction call may or may not have gone out before the kill.
    const calls = extractionCalls();
    for (const job of final) {
      const allowed = before.get(job.id) === 'RUNNING' ? [1, 2] : [1];
      expect(allowed, `extraction calls for ${job.words}`).toContain(calls.get(job.words));
    }
    report(
      `crash: ${left.DONE} done before SIGKILL, ${left.RUNNING} in flight, ${left.PENDING} pending; ` +
        `worker B finished the rest in ${takeoverMs} ms (in-flight ones reclaimed as attempt 2); ` +
        `${totalCalls()} extraction calls for ${N} turns; test ${Date.now() - began} ms`,
    );
  });

  it('three workers started together run every job exactly once', async () => {
    const began = Date.now();
    openrouter.setDelay((body) => (isExtractionRequest(body) ? 150 : 0));
    const turns = await createTurns(USERS, TURNS_PER_USER);
    // Park the jobs until all three workers are polling, then make them due at one instant:
    // the workers contend for every claim, instead of the first one up taking the lot.
    await t.services.prisma.$executeRaw`UPDATE jobs SET run_at = now() + interval '1 hour'`;
    // Leases (default 30 s) are renewed while a job runs, so any job run twice would be a real
    // double claim.
    const config = { WORKER_CONCURRENCY: '3' };
    const fleet = ['worker A', 'worker B', 'worker C'].map((name) => startWorker(name, config));
    const ids = await within(
      Promise.all(fleet.map((w) => w.ready)),
      BOOT_MS,
      'the workers to start',
    );
    const released = Date.now();
    await t.services.prisma.$executeRaw`UPDATE jobs SET run_at = now()`;
    const final = await allFinished(N, RUN_MS);
    const drainMs = Date.now() - released;

    expect(tally(final)).toEqual({ PENDING: 0, RUNNING: 0, DONE: N, DEAD: 0 });
    // attempts counts claims: one each means no job was ever claimed twice...
    expect(final.filter((j) => j.attempts !== 1)).toEqual([]);
    // ...and the model was asked about each turn once, so no job even started twice.
    const calls = extractionCalls();
    expect(calls.size).toBe(turns.length);
    expect([...calls].filter(([, n]) => n !== 1)).toEqual([]);
    await expectEachMemoryOnce(turns);

    const perWorker = new Map<string, number>();
    for (const writer of (await writerByJob()).values()) {
      perWorker.set(writer ?? '?', (perWorker.get(writer ?? '?') ?? 0) + 1);
    }
    expect(ids).toEqual(expect.arrayContaining([...perWorker.keys()]));
    expect(perWorker.size).toBeGreaterThan(1);
    report(
      `concurrent: ${N} jobs over ${perWorker.size} workers (${[...perWorker.values()].join('/')}) ` +
        `in ${drainMs} ms, each claimed and extracted once; test ${Date.now() - began} ms`,
    );
  });

  describe('SIGTERM while jobs are in flight', () => {
    /** Waits until worker A's four claimed jobs are all waiting on the model. */
    async function fourInFlight(): Promise<void> {
      await waitUntil(
        'four extraction calls in flight',
        RUN_MS,
        async () => ({ jobs: await jobCounts(), calls: totalCalls() }),
        (s) => s.calls === 4 && s.jobs.RUNNING === 4,
      );
    }

    async function stop(worker: WorkerProcess): Promise<number> {
      const signalled = Date.now();
      worker.kill('SIGTERM');
      expect(await within(worker.exited, 15_000, `${worker.name} to exit`)).toEqual({
        code: 0,
        signal: null,
      });
      return Date.now() - signalled;
    }

    it('past the drain deadline, hands its jobs back uncounted for another worker to finish', async () => {
      const began = Date.now();
      // Extraction outlasts the 500 ms drain deadline: the worker must give the jobs back.
      openrouter.setDelay((body) => (isExtractionRequest(body) ? 3_000 : 0));
      const turns = await createTurns(2, 4);
      const worker = startWorker('worker A', {
        WORKER_CONCURRENCY: '4',
        SHUTDOWN_TIMEOUT_MS: '500',
      });
      await within(worker.ready, BOOT_MS, 'worker A to start');
      await fourInFlight();
      const exitMs = await stop(worker);
      expect(exitMs).toBeLessThan(500 + 2_000);

      const afterStop = await jobStates();
      expect(tally(afterStop)).toEqual({ PENDING: 8, RUNNING: 0, DONE: 0, DEAD: 0 });
      expect(afterStop.filter((j) => j.attempts !== 0)).toEqual([]);
      expect(await t.services.prisma.memory.count()).toBe(0);

      openrouter.setDelay(() => 0);
      startWorker('worker B', {});
      const final = await allFinished(8, RUN_MS);
      expect(tally(final)).toEqual({ PENDING: 0, RUNNING: 0, DONE: 8, DEAD: 0 });
      // The released attempt was not counted: one attempt each, so no job drifts toward DEAD.
      expect(final.filter((j) => j.attempts !== 1)).toEqual([]);
      await expectEachMemoryOnce(turns);
      report(
        `SIGTERM past deadline: exit 0 after ${exitMs} ms (deadline 500 ms), 4 jobs released ` +
          `uncounted, finished by worker B; test ${Date.now() - began} ms`,
      );
    });

    it('within the drain deadline, finishes its in-flight jobs and claims no more', async () => {
      const began = Date.now();
      // Long enough that nothing finishes between seeing the four calls and the signal.
      openrouter.setDelay((body) => (isExtractionRequest(body) ? 1_500 : 0));
      const turns = await createTurns(2, 4);
      const worker = startWorker('worker A', {
        WORKER_CONCURRENCY: '4',
        SHUTDOWN_TIMEOUT_MS: '10000',
      });
      await within(worker.ready, BOOT_MS, 'worker A to start');
      await fourInFlight();
      const inFlight = (await jobStates()).filter((j) => j.status === 'RUNNING');
      const exitMs = await stop(worker);
      // The rest of the 1.5 s model call, the writes and closing the pool: it drained, it did
      // not sit out the 10 s deadline.
      expect(exitMs).toBeLessThan(5_000);

      // The four in flight were finished; the other four were never claimed (attempts 0): it
      // stopped claiming at the signal.
      const afterStop = await jobStates();
      const drained = new Set(inFlight.map((j) => j.id));
      expect(afterStop.map((j) => [j.words, j.status, j.attempts])).toEqual(
        afterStop.map((j) => (drained.has(j.id) ? [j.words, 'DONE', 1] : [j.words, 'PENDING', 0])),
      );
      expect(await t.services.prisma.memory.count()).toBe(4);

      openrouter.setDelay(() => 0);
      startWorker('worker B', {});
      const final = await allFinished(8, RUN_MS);
      expect(tally(final)).toEqual({ PENDING: 0, RUNNING: 0, DONE: 8, DEAD: 0 });
      expect(final.filter((j) => j.attempts !== 1)).toEqual([]);
      await expectEachMemoryOnce(turns);
      report(
        `SIGTERM within deadline: 4 in-flight jobs finished, exit 0 after ${exitMs} ms; ` +
          `test ${Date.now() - began} ms`,
      );
    });
  });
});

function tally(jobs: JobState[]): Record<JobStatus, number> {
  const n: Record<JobStatus, number> = { PENDING: 0, RUNNING: 0, DONE: 0, DEAD: 0 };
  for (const job of jobs) n[job.status]++;
  return n;
}

/** The id in a worker's "worker started" log line (pino JSON on stdout). */
function startedWorkerId(line: string): string | null {
  try {
    const entry = JSON.parse(line) as { msg?: unknown; worker?: unknown };
    return entry.msg === 'worker started' && typeof entry.worker === 'string' ? entry.worker : null;
  } catch {
    return null;
  }
}

/** Polls `probe` until `done` holds; fails with the last value seen after `ms`. */
async function waitUntil<T>(
  what: string,
  ms: number,
  probe: () => Promise<T>,
  done: (value: T) => boolean,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (done(value)) return value;
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${ms} ms waiting for ${what}; last: ${JSON.stringify(value)}`,
      );
    }
    await sleep(50);
  }
}

function report(line: string): void {
  console.info(`[worker-processes] ${line}`);
}
