import { randomUUID } from 'node:crypto';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Worker } from '../src/jobs/worker.js';
import { silentLogger } from '../src/logger.js';
import { EXTRACT_MEMORIES, extractMemoriesHandler } from '../src/memory/extract-job.js';
import { insertMemory } from '../src/memory/store.js';
import type { MemoryExtractor } from '../src/memory/types.js';
import { isExtractionRequest } from './fakes/extraction.js';
import {
  type ChatBody,
  type OpenRouterFake,
  startOpenRouterFake,
} from './fakes/openrouter-fake.js';
import { fakeEmbedding, startVoyageFake, type VoyageFake } from './fakes/voyage-fake.js';
import { createTestContext, dataOf, type TestContext } from './helpers/app.js';
import { personaIds, send, startChat } from './helpers/chat.js';
import { type MemoryPage, PROFILE_MEMORIES, RELATIONSHIP_MEMORIES } from './helpers/operations.js';
import { fakeProviderEnv } from './helpers/providers.js';

/**
 * Issue 3: memories are written once. Exact and near duplicates are dropped per user and layer,
 * a correction supersedes the memory it names (and only a memory it may name), and history
 * records all of it. The extractor is the real LLM extractor talking to the OpenRouter fake,
 * whose answers are scripted per user message; embeddings come from the Voyage fake, whose
 * bag-of-words vectors make near-identical wordings near-identical vectors.
 */

interface Listed {
  id: string;
  layer: string;
  content: string;
}

interface ScriptedMemory {
  content: string;
  category?: string;
  layer: 'PROFILE' | 'RELATIONSHIP';
  supersedes?: string | null;
}

/** What the model answers to one user message, given the existing memories it was shown. */
type Script = (existing: Listed[]) => ScriptedMemory[];

const scripts = new Map<string, Script>();
/** The existing-memories list each extraction request carried, by user message. */
const shown = new Map<string, Listed[]>();

/** Reads an extraction request the way a model would: its tagged data blocks. */
function parseExtraction(body: ChatBody): { userMessage: string; existing: Listed[] } | null {
  if (!isExtractionRequest(body)) return null;
  const data = body.messages[1]?.content ?? '';
  const block = (tag: string) =>
    new RegExp(`<${tag}>\\n([\\s\\S]*?)\\n</${tag}>`).exec(data)?.[1] ?? '';
  const existing = [
    ...block('existing_memories').matchAll(/^\[(.+?)\] (PROFILE|RELATIONSHIP) "(.*)"$/gm),
  ].map(([, id = '', layer = '', content = '']) => ({ id, layer, content }));
  return { userMessage: block('user_message'), existing };
}

function respond(body: ChatBody): string {
  const request = parseExtraction(body);
  if (!request) return 'Tell me more!';
  shown.set(request.userMessage, request.existing);
  const memories = scripts.get(request.userMessage)?.(request.existing) ?? [];
  return JSON.stringify({
    memories: memories.map((m) => ({ category: 'fact', confidence: 0.9, ...m })),
  });
}

const cosine = (a: number[], b: number[]) => a.reduce((sum, x, i) => sum + x * (b[i] ?? 0), 0);
const similarity = (a: string, b: string) => cosine(fakeEmbedding(a), fakeEmbedding(b));

let t: TestContext;
let voyage: VoyageFake;
let openrouter: OpenRouterFake;

beforeAll(async () => {
  voyage = await startVoyageFake();
  openrouter = await startOpenRouterFake({ responder: respond });
  t = await createTestContext({
    env: {
      ...fakeProviderEnv({ voyage, openrouter }),
      VOYAGE_TIMEOUT_MS: '5000',
      OPENROUTER_TIMEOUT_MS: '5000',
    },
  });
});
afterAll(async () => {
  await t?.close();
  await voyage?.close();
  await openrouter?.close();
});

interface Chat {
  userId: string;
  token: string;
  sessionId: string;
  instanceId: string;
}

async function newChat(persona: 'mira' | 'rook' = 'mira', user?: Chat): Promise<Chat> {
  const { id, token } = user ? { id: user.userId, token: user.token } : await t.newUser();
  const personas = await personaIds(t, token);
  const { sessionId, instanceId } = await startChat(t, token, personas[persona] as string);
  return { userId: id, token, sessionId, instanceId };
}

/** One turn whose extraction answer is scripted; memory extraction is left queued. */
function say(chat: Chat, message: string, memories: ScriptedMemory[] | Script) {
  scripts.set(message, typeof memories === 'function' ? memories : () => memories);
  return send(t, chat.token, chat.sessionId, message);
}

/** One turn, then its memory extraction. */
async function turn(chat: Chat, message: string, memories: ScriptedMemory[] | Script) {
  const result = await say(chat, message, memories);
  await t.drainJobs();
  return result;
}

type Edge = MemoryPage['edges'][number];

async function profileMemories(chat: Chat, search?: string): Promise<Edge[]> {
  const res = await t.gql<{ profileMemories: MemoryPage }>(
    PROFILE_MEMORIES,
    { first: 100, search },
    chat.token,
  );
  return dataOf(res).profileMemories.edges;
}

async function relationshipMemories(chat: Chat): Promise<Edge[]> {
  const res = await t.gql<{ relationshipMemories: MemoryPage }>(
    RELATIONSHIP_MEMORIES,
    { instanceId: chat.instanceId },
    chat.token,
  );
  return dataOf(res).relationshipMemories.edges;
}

const contents = (edges: Edge[]) => edges.map((e) => e.node.content).sort();
const rawId = (globalId: string) => decodeGlobalID(globalId).id;

async function historyOf(userId: string) {
  return t.services.prisma.memoryHistory.findMany({
    where: { userId },
    orderBy: { createdAt: 'asc' },
    select: { memoryId: true, action: true, oldContent: true, newContent: true },
  });
}

describe('exact and near duplicates', () => {
  it('does not write a memory again that differs only in case or trailing punctuation', async () => {
    const chat = await newChat();
    await turn(chat, "I don't eat meat at all", [
      { content: 'User is vegetarian', layer: 'PROFILE' },
    ]);
    await turn(chat, 'Still vegetarian, by the way', [
      { content: 'user is vegetarian.', layer: 'PROFILE' },
    ]);
    await turn(chat, 'Did I tell you I am vegetarian?', [
      { content: 'User is VEGETARIAN!', layer: 'PROFILE' },
      // The same item twice in one answer.
      { content: 'User is vegetarian', layer: 'PROFILE' },
    ]);
    expect(contents(await profileMemories(chat))).toEqual(['User is vegetarian']);
    expect((await historyOf(chat.userId)).map((h) => h.action)).toEqual(['ADDED']);
  });

  it('writes it once when two turns saying it are extracted at the same time', async () => {
    const chat = await newChat();
    // Both jobs wait in the queue and one drain runs them together (WORKER_CONCURRENCY 2):
    // neither extraction can see the other's memory, so the store's own check must catch it.
    await say(chat, 'I play the cello', [{ content: 'User plays the cello', layer: 'PROFILE' }]);
    await say(chat, 'Yes, the CELLO!', [{ content: 'User plays the cello.', layer: 'PROFILE' }]);
    await t.drainJobs();
    // The premise: neither extraction was shown the other's memory.
    expect(shown.get('I play the cello')).toEqual([]);
    expect(shown.get('Yes, the CELLO!')).toEqual([]);
    // Either wording may win the race; there is one.
    const written = contents(await profileMemories(chat));
    expect(written).toHaveLength(1);
    expect(written[0]).toMatch(/^User plays the cello\.?$/);
    expect(await t.services.prisma.memory.count({ where: { userId: chat.userId } })).toBe(1);
  });

  it('does not write a near duplicate, and does write a clearly different memory', async () => {
    const original = 'User loves hiking in the Alps every summer';
    const near = 'User really loves hiking in the Alps every summer';
    const different = 'User works as a pharmacist';
    // What the Voyage fake makes of these wordings, against the configured threshold.
    const threshold = t.env.MEMORY_DEDUP_THRESHOLD;
    expect(similarity(original, near)).toBeGreaterThanOrEqual(threshold);
    expect(similarity(original, different)).toBeLessThan(threshold);

    const chat = await newChat();
    await turn(chat, 'Every summer I go hiking in the Alps', [
      { content: original, category: 'preference', layer: 'PROFILE' },
    ]);
    await turn(chat, 'I really do love those Alps hikes. I work in a pharmacy, too', [
      { content: near, category: 'preference', layer: 'PROFILE' },
      { content: different, layer: 'PROFILE' },
    ]);
    expect(contents(await profileMemories(chat))).toEqual([different, original].sort());
  });
});

describe('corrections', () => {
  it('supersedes the memory the extraction names from the listed existing memories', async () => {
    const chat = await newChat();
    await turn(chat, 'I live in Lisbon', [{ content: 'User lives in Lisbon', layer: 'PROFILE' }]);
    const [lisbon] = await profileMemories(chat);
    const lisbonId = rawId(lisbon?.node.id ?? '');

    // The model learns A's id only from the prompt, as a real model would.
    await turn(chat, 'I moved to Porto', (existing) => {
      const old = existing.find((m) => m.content === 'User lives in Lisbon');
      return [{ content: 'User lives in Porto', layer: 'PROFILE', supersedes: old?.id ?? null }];
    });
    expect(shown.get('I moved to Porto')).toContainEqual({
      id: lisbonId,
      layer: 'PROFILE',
      content: 'User lives in Lisbon',
    });

    const live = await profileMemories(chat);
    expect(contents(live)).toEqual(['User lives in Porto']);
    const portoId = rawId(live[0]?.node.id ?? '');
    // Not even a search for it brings the old memory back.
    expect(contents(await profileMemories(chat, 'Lisbon'))).toEqual(['User lives in Porto']);
    const next = await send(t, chat.token, chat.sessionId, 'Do you remember I lived in Lisbon?');
    const recalled = [...next.recalled.profile, ...next.recalled.relationship];
    expect(recalled.map((r) => rawId(r.memory.id))).not.toContain(lisbonId);

    const row = await t.services.prisma.memory.findUniqueOrThrow({ where: { id: lisbonId } });
    expect(row.supersededById).toBe(portoId);
    expect(await historyOf(chat.userId)).toEqual([
      { memoryId: lisbonId, action: 'ADDED', oldContent: null, newContent: 'User lives in Lisbon' },
      { memoryId: portoId, action: 'ADDED', oldContent: null, newContent: 'User lives in Porto' },
      {
        memoryId: lisbonId,
        action: 'SUPERSEDED',
        oldContent: 'User lives in Lisbon',
        newContent: 'User lives in Porto',
      },
    ]);
  });

  it('ignores a made-up supersedes id: the memory is added and nothing is superseded', async () => {
    const chat = await newChat();
    await turn(chat, 'I have a cat called Miso', [
      { content: 'User has a cat called Miso', layer: 'PROFILE' },
    ]);
    await turn(chat, 'I also started learning Japanese', [
      { content: 'User is learning Japanese', layer: 'PROFILE', supersedes: randomUUID() },
      // An id shaped like the prompt's example rather than a real one.
      { content: 'User is interested in Japan', layer: 'PROFILE', supersedes: 'ex-1' },
    ]);
    expect(contents(await profileMemories(chat))).toEqual([
      'User has a cat called Miso',
      'User is interested in Japan',
      'User is learning Japanese',
    ]);
    const actions = (await historyOf(chat.userId)).map((h) => h.action);
    expect(actions).toEqual(['ADDED', 'ADDED', 'ADDED']);
  });

  it("cannot supersede another user's memory", async () => {
    const owner = await newChat();
    await turn(owner, 'I live in Berlin', [{ content: 'User lives in Berlin', layer: 'PROFILE' }]);
    const [berlin] = await profileMemories(owner);
    const berlinId = rawId(berlin?.node.id ?? '');

    // Another user's model names the owner's memory (a prompt injection, say).
    const stranger = await newChat();
    await turn(stranger, 'I moved to Madrid', [
      { content: 'User lives in Madrid', layer: 'PROFILE', supersedes: berlinId },
    ]);
    expect(shown.get('I moved to Madrid')?.map((m) => m.id)).not.toContain(berlinId);
    expect(contents(await profileMemories(stranger))).toEqual(['User lives in Madrid']);

    // Even an extractor that passed the id through unchecked cannot reach the owner's row:
    // the store only supersedes within the job's own user and layer.
    const trusting: MemoryExtractor = {
      provider: 'test',
      extract: async () => [
        { content: 'User lives in Rome', category: 'FACT', layer: 'PROFILE', supersedes: berlinId },
      ],
    };
    await send(t, stranger.token, stranger.sessionId, 'Actually, Rome now');
    const worker = new Worker({
      prisma: t.services.prisma,
      handlers: {
        [EXTRACT_MEMORIES]: extractMemoriesHandler({ ...t.services, extractor: trusting }),
      },
      logger: silentLogger,
      concurrency: 1,
      pollMs: 10,
      leaseMs: 60_000,
      retryBaseMs: 0,
    });
    expect(await worker.runOnce()).toBe(1);
    expect(contents(await profileMemories(stranger))).toEqual([
      'User lives in Madrid',
      'User lives in Rome',
    ]);

    expect(contents(await profileMemories(owner))).toEqual(['User lives in Berlin']);
    const row = await t.services.prisma.memory.findUniqueOrThrow({ where: { id: berlinId } });
    expect(row.supersededById).toBeNull();
    expect((await historyOf(owner.userId)).map((h) => h.action)).toEqual(['ADDED']);
    expect((await historyOf(stranger.userId)).map((h) => h.action)).toEqual(['ADDED', 'ADDED']);
  });
});

describe('layers', () => {
  it('keeps the same content once in each layer', async () => {
    const chat = await newChat('mira');
    await turn(chat, 'I adore jazz, and you and I always talk about it', [
      { content: 'User loves jazz', layer: 'PROFILE' },
      { content: 'User loves jazz', layer: 'RELATIONSHIP' },
    ]);
    expect(contents(await profileMemories(chat))).toEqual(['User loves jazz']);
    expect(contents(await relationshipMemories(chat))).toEqual(['User loves jazz']);

    // Said again, in either layer, it is a duplicate of that layer's memory.
    await turn(chat, 'Jazz, jazz, jazz!', [
      { content: 'User loves jazz.', layer: 'RELATIONSHIP' },
      { content: 'user loves jazz', layer: 'PROFILE' },
    ]);
    expect(contents(await profileMemories(chat))).toEqual(['User loves jazz']);
    expect(contents(await relationshipMemories(chat))).toEqual(['User loves jazz']);
  });

  it('writes a relationship memory whose content a profile memory already has', async () => {
    const chat = await newChat('mira');
    await turn(chat, 'I am a huge fan of the blues', [
      { content: 'User loves the blues', layer: 'PROFILE' },
    ]);
    // Later it becomes something between the user and Mira too. The extraction is shown the
    // profile memory; the relationship layer has no such memory yet.
    await turn(chat, 'Mira, the blues is our thing now', [
      { content: 'User loves the blues', layer: 'RELATIONSHIP' },
    ]);
    expect(shown.get('Mira, the blues is our thing now')).toContainEqual(
      expect.objectContaining({ layer: 'PROFILE', content: 'User loves the blues' }),
    );
    expect(contents(await profileMemories(chat))).toEqual(['User loves the blues']);
    expect(contents(await relationshipMemories(chat))).toEqual(['User loves the blues']);
  });

  it('keeps the same relationship memory once per persona instance', async () => {
    const mira = await newChat('mira');
    const greeting = 'User likes to be greeted with a joke';
    await turn(mira, 'Always greet me with a joke, please', [
      { content: greeting, category: 'preference', layer: 'RELATIONSHIP' },
    ]);
    const rook = await newChat('rook', mira);
    await turn(rook, 'Rook, greet me with a joke too', [
      { content: greeting, category: 'preference', layer: 'RELATIONSHIP' },
    ]);
    expect(contents(await relationshipMemories(mira))).toEqual([greeting]);
    expect(contents(await relationshipMemories(rook))).toEqual([greeting]);
    expect(await profileMemories(mira)).toEqual([]);

    // Repeated to Rook, it stays one memory there.
    await turn(rook, 'Seriously Rook, jokes first!', [
      { content: `${greeting}.`, category: 'preference', layer: 'RELATIONSHIP' },
    ]);
    const rows = await t.services.prisma.memory.findMany({ where: { userId: mira.userId } });
    expect(rows.map((r) => r.instanceId).sort()).toEqual(
      [rawId(mira.instanceId), rawId(rook.instanceId)].sort(),
    );
  });
});

describe('in a tenant where many other users hold similar memories', () => {
  // More other users than HNSW's default candidate list (hnsw.ef_search = 40), each holding
  // memories closer to what this user says next than the user's own memories are, as common
  // facts are in a large tenant. Each other row differs by one word: pgvector's HNSW stores
  // identical vectors as one graph element, which would hide the crowding.
  const OTHERS = 60;
  const near = 'User really loves sailing a small red boat on the big lake near home every weekend';
  const original =
    'User really loves sailing a small blue boat on the big lake near home every weekend';
  const moved = 'User moved to Porto from Lisbon';
  const others = Array.from({ length: OTHERS }, (_, i) => [`${near} zq${i}`, `${moved} zq${i}`]);

  beforeAll(async () => {
    // Other users' rows, inserted directly: only their presence in the same table matters.
    const prisma = t.services.prisma;
    for (const contents of others) {
      const userId = randomUUID();
      await prisma.user.create({ data: { id: userId } });
      for (const content of contents) {
        await insertMemory(prisma, {
          scope: { userId, instanceId: null },
          content,
          category: 'FACT',
          confidence: 0.9,
          embedding: fakeEmbedding(content),
          embeddingModel: t.services.embedder.model,
          sourceMessageId: null,
          sourceSessionId: null,
        });
      }
    }
  });

  it("still drops a near duplicate of the user's own memory", async () => {
    const own = similarity(original, near);
    expect(own).toBeGreaterThanOrEqual(t.env.MEMORY_DEDUP_THRESHOLD);
    // The premise: every other user's row is nearer to the new memory than the user's own.
    expect(others.every(([other = '']) => similarity(other, near) > own)).toBe(true);

    const chat = await newChat();
    await turn(chat, 'I sail my little blue boat on the big lake every weekend', [
      { content: original, layer: 'PROFILE' },
    ]);
    await turn(chat, 'Sailing on that lake near home is really my thing', [
      { content: near, layer: 'PROFILE' },
    ]);
    expect(contents(await profileMemories(chat))).toEqual([original]);
  });

  it("still shows the extractor the user's own memory to correct", async () => {
    const message = 'I moved to Porto from Lisbon';
    const own = similarity(message, 'User lives in Lisbon');
    expect(others.every(([, other = '']) => similarity(other, message) > own)).toBe(true);

    const chat = await newChat();
    await turn(chat, 'My home is Lisbon', [{ content: 'User lives in Lisbon', layer: 'PROFILE' }]);
    const [lisbon] = await profileMemories(chat);
    await turn(chat, message, (existing) => {
      const old = existing.find((m) => m.content === 'User lives in Lisbon');
      return [{ content: 'User lives in Porto', layer: 'PROFILE', supersedes: old?.id ?? null }];
    });
    expect(shown.get(message)?.map((m) => m.id)).toContain(rawId(lisbon?.node.id ?? ''));
    expect(contents(await profileMemories(chat))).toEqual(['User lives in Porto']);
  });
});
