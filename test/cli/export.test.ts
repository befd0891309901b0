import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PrismaClient } from '@prisma/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliEnv } from '../../src/cli/common.js';
import { exportCommand } from '../../src/cli/export.js';
import { exportUserMemories } from '../../src/memory/export.js';
import { insertMemory, supersedeMemory } from '../../src/memory/store.js';
import { DEFAULT_PERSONAS } from '../../src/personas/defaults.js';
import { upsertPersonas } from '../../src/personas/seed.js';
import { openTestDatabase, type TestDatabase } from '../helpers/database.js';
import { PROCESS_TEST_TIMEOUT_MS } from '../helpers/timeouts.js';
import { captureIo, normalise, openChildDatabase, runCliProcess } from './helpers.js';

let database: TestDatabase;
let dir: string;
const env = cliEnv({ NODE_ENV: 'test' });
const at = (minute: number) => new Date(Date.UTC(2026, 0, 1, 12, minute));

/**
 * One user with both layers: a profile fact corrected by a newer one (superseded, with
 * history), a relationship memory with Mira, an instance with Rook and no memories yet, and
 * the history of a deleted memory, and a chat session with Mira holding one turn. Plus another
 * user whose data (memories and messages) must not leak in.
 */
async function seedUser(prisma: PrismaClient): Promise<string> {
  await upsertPersonas(prisma, DEFAULT_PERSONAS);
  const userId = randomUUID();
  await prisma.user.create({ data: { id: userId, createdAt: at(0) } });
  const persona = async (slug: string) =>
    (await prisma.persona.findUniqueOrThrow({ where: { slug } })).id;
  const mira = await prisma.personaInstance.create({
    data: { userId, personaId: await persona('mira'), createdAt: at(1) },
  });
  await prisma.personaInstance.create({
    data: { userId, personaId: await persona('rook'), createdAt: at(2) },
  });
  const add = async (instanceId: string | null, content: string, minute: number, user = userId) => {
    const id = await insertMemory(prisma, {
      scope: { userId: user, instanceId },
      content,
      category: instanceId ? 'EVENT' : 'FACT',
      confidence: 0.9,
      embedding: Array.from({ length: 512 }, (_, i) => Math.cos(i + minute)),
      embeddingModel: 'use-lite-512',
      sourceMessageId: null,
      sourceSessionId: null,
    });
    if (!id) throw new Error('duplicate');
    await prisma.memory.update({ where: { id }, data: { createdAt: at(minute) } });
    return id;
  };
  const nurse = await add(null, 'Works as a nurse', 3);
  const joke = await add(mira.id, 'We joked about her terrible puns', 4);
  const doctor = await add(null, 'Works as a doctor', 5);
  await supersedeMemory(prisma, { userId, instanceId: null }, nurse, doctor);
  const gone = randomUUID();
  const history = (
    memoryId: string,
    instanceId: string | null,
    action: 'ADDED' | 'SUPERSEDED' | 'DELETED',
    minute: number,
    oldContent: string | null,
    newContent: string | null,
  ) => ({
    memoryId,
    userId,
    instanceId,
    action,
    oldContent,
    newContent,
    actorType: action === 'DELETED' ? 'user' : 'worker',
    actorId: action === 'DELETED' ? userId : 'worker-1',
    createdAt: at(minute),
  });
  await prisma.memoryHistory.createMany({
    data: [
      history(nurse, null, 'ADDED', 3, null, 'Works as a nurse'),
      history(joke, mira.id, 'ADDED', 4, null, 'We joked about her terrible puns'),
      history(doctor, null, 'ADDED', 5, null, 'Works as a doctor'),
      history(nurse, null, 'SUPERSEDED', 5, 'Works as a nurse', 'Works as a doctor'),
      history(gone, mira.id, 'ADDED', 6, null, 'Hates Mondays'),
      history(gone, mira.id, 'DELETED', 7, 'Hates Mondays', null),
    ],
  });
  const session = await prisma.chatSession.create({
    data: { userId, instanceId: mira.id, createdAt: at(9) },
  });
  const hello = await prisma.message.create({
    data: {
      sessionId: session.id,
      userId,
      role: 'USER',
      content: 'Hi Mira, I work nights at the hospital',
      clientMessageId: 'msg-1',
      createdAt: at(9),
    },
  });
  await prisma.message.create({
    data: {
      sessionId: session.id,
      userId,
      role: 'ASSISTANT',
      content: 'Night shifts! Tell me more.',
      replyToId: hello.id,
      model: 'offline',
      createdAt: at(10),
    },
  });
  const other = randomUUID();
  await prisma.user.create({ data: { id: other } });
  await add(null, 'Someone else entirely', 8, other);
  const otherMira = await prisma.personaInstance.create({
    data: { userId: other, personaId: await persona('mira') },
  });
  const otherSession = await prisma.chatSession.create({
    data: { userId: other, instanceId: otherMira.id },
  });
  await prisma.message.create({
    data: {
      sessionId: otherSession.id,
      userId: other,
      role: 'USER',
      content: 'Someone else says hi',
    },
  });
  return userId;
}

beforeAll(async () => {
  database = await openTestDatabase();
  dir = await mkdtemp(join(tmpdir(), 'companion-export-'));
});

afterAll(async () => {
  await database?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('exportUserMemories', () => {
  it('exports both layers with history, grouped per persona instance, without embeddings', async () => {
    const userId = await seedUser(database.db.prisma);
    const data = await exportUserMemories(database.db.prisma, userId);
    expect(JSON.stringify(data)).not.toMatch(/"embedding"|Someone else/);
    expect(normalise(data)).toMatchInlineSnapshot(`
      {
        "chats": [
          {
            "createdAt": "<time>",
            "instanceId": "<id 7>",
            "messages": [
              {
                "clientMessageId": "msg-1",
                "content": "Hi Mira, I work nights at the hospital",
                "createdAt": "<time>",
                "id": "<id 17>",
                "model": null,
                "replyToId": null,
                "role": "USER",
              },
              {
                "clientMessageId": null,
                "content": "Night shifts! Tell me more.",
                "createdAt": "<time>",
                "id": "<id 18>",
                "model": "offline",
                "replyToId": "<id 17>",
                "role": "ASSISTANT",
              },
            ],
            "sessionId": "<id 16>",
          },
        ],
        "deletedMemories": [
          {
            "history": [
              {
                "action": "ADDED",
                "actorId": "worker-1",
                "actorType": "worker",
                "createdAt": "<time>",
                "id": "<id 14>",
                "jobId": null,
                "newContent": "Hates Mondays",
                "oldContent": null,
              },
              {
                "action": "DELETED",
                "actorId": "<id 1>",
                "actorType": "user",
                "createdAt": "<time>",
                "id": "<id 15>",
                "jobId": null,
                "newContent": null,
                "oldContent": "Hates Mondays",
              },
            ],
            "instanceId": "<id 7>",
            "layer": "RELATIONSHIP",
            "memoryId": "<id 13>",
          },
        ],
        "exportedAt": "<time>",
        "followUps": [],
        "format": "companion-memory-export",
        "profile": [
          {
            "category": "FACT",
            "confidence": 0.9,
            "content": "Works as a nurse",
            "createdAt": "<time>",
            "embeddingModel": "use-lite-512",
            "expiresAt": null,
            "history": [
              {
                "action": "ADDED",
                "actorId": "worker-1",
                "actorType": "worker",
                "createdAt": "<time>",
                "id": "<id 4>",
                "jobId": null,
                "newContent": "Works as a nurse",
                "oldContent": null,
              },
              {
                "action": "SUPERSEDED",
                "actorId": "worker-1",
                "actorType": "worker",
                "createdAt": "<time>",
                "id": "<id 5>",
                "jobId": null,
                "newContent": "Works as a doctor",
                "oldContent": "Works as a nurse",
              },
            ],
            "id": "<id 2>",
            "occurredAt": null,
            "sourceMessageId": null,
            "sourceSessionId": null,
            "supersededAt": "<time>",
            "supersededBy": "<id 3>",
            "updatedAt": "<time>",
          },
          {
            "category": "FACT",
            "confidence": 0.9,
            "content": "Works as a doctor",
            "createdAt": "<time>",
            "embeddingModel": "use-lite-512",
            "expiresAt": null,
            "history": [
              {
                "action": "ADDED",
                "actorId": "worker-1",
                "actorType": "worker",
                "createdAt": "<time>",
                "id": "<id 6>",
                "jobId": null,
                "newContent": "Works as a doctor",
                "oldContent": null,
              },
            ],
            "id": "<id 3>",
            "occurredAt": null,
            "sourceMessageId": null,
            "sourceSessionId": null,
            "supersededAt": null,
            "supersededBy": null,
            "updatedAt": "<time>",
          },
        ],
        "relationships": [
          {
            "createdAt": "<time>",
            "instanceId": "<id 7>",
            "memories": [
              {
                "category": "EVENT",
                "confidence": 0.9,
                "content": "We joked about her terrible puns",
                "createdAt": "<time>",
                "embeddingModel": "use-lite-512",
                "expiresAt": null,
                "history": [
                  {
                    "action": "ADDED",
                    "actorId": "worker-1",
                    "actorType": "worker",
                    "createdAt": "<time>",
                    "id": "<id 10>",
                    "jobId": null,
                    "newContent": "We joked about her terrible puns",
                    "oldContent": null,
                  },
                ],
                "id": "<id 9>",
                "occurredAt": null,
                "sourceMessageId": null,
                "sourceSessionId": null,
                "supersededAt": null,
                "supersededBy": null,
                "updatedAt": "<time>",
              },
            ],
            "persona": {
              "id": "<id 8>",
              "name": "Mira",
              "slug": "mira",
            },
          },
          {
            "createdAt": "<time>",
            "instanceId": "<id 11>",
            "memories": [],
            "persona": {
              "id": "<id 12>",
              "name": "Rook",
              "slug": "rook",
            },
          },
        ],
        "user": {
          "createdAt": "<time>",
          "id": "<id 1>",
          "timeZone": "UTC",
        },
        "version": 2,
      }
    `);
  });

  it('is null for an unknown user', async () => {
    expect(await exportUserMemories(database.db.prisma, randomUUID())).toBeNull();
  });
});

describe('npm run export', () => {
  it('writes the export to --out, readable by the owner only', async () => {
    const userId = await seedUser(database.db.prisma);
    const out = join(dir, 'export.json');
    const io = captureIo();
    const deps = { env, db: database.db };
    expect(await exportCommand(['--user', userId.toUpperCase(), '--out', out], io, deps)).toBe(0);
    expect(io.out()).toBe('');
    expect(io.err()).toBe(
      `Exported 3 memories (2 profile, 2 persona instances) and 2 messages (1 chat sessions) to ${out}.\n`,
    );
    expect((await stat(out)).mode & 0o777).toBe(0o600);
    const written = JSON.parse(await readFile(out, 'utf8'));
    expect(written.user.id).toBe(userId);
    expect(written.profile).toHaveLength(2);
    expect(written.chats[0].messages).toHaveLength(2);
  });

  it('rejects a bad or unknown user with exit code 1', async () => {
    const deps = { env, db: database.db };
    const cases: [string[], RegExp][] = [
      [[], /--user <uuid> is required/],
      [['--user', 'not-a-uuid'], /--user must be a UUID, got "not-a-uuid"/],
      [['--user', randomUUID()], /no user [0-9a-f-]{36} in this database/],
      [['--user'], /--user/],
    ];
    for (const [argv, message] of cases) {
      const io = captureIo();
      expect(await exportCommand(argv, io, deps), argv.join(' ')).toBe(1);
      expect(io.err()).toMatch(message);
      expect(io.out()).toBe('');
    }
  });

  it('runs as a process and prints the same export to stdout', {
    timeout: PROCESS_TEST_TIMEOUT_MS,
  }, async () => {
    const child = await openChildDatabase();
    try {
      const userId = await child.use((db) => seedUser(db.prisma));
      const run = await runCliProcess('src/cli/export.ts', ['--user', userId], child.env);
      expect(run.code, run.stderr).toBe(0);
      const expected = await child.use((db) => exportUserMemories(db.prisma, userId));
      expect(normalise(JSON.parse(run.stdout))).toEqual(normalise(expected));
    } finally {
      await child.close();
    }
  });
});
