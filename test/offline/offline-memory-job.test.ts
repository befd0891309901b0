import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/time/clock.js';
import { createTestContext, type TestContext } from '../helpers/app.js';
import { personaIds, send, startChat } from '../helpers/chat.js';

/**
 * Issue 17 end to end on the zero-config stack (offline extractor, local embedder, offline
 * companion, the real extraction job and database): atomic memories, a resolved "next month",
 * and a move that supersedes the old home through the job's own supersede path.
 */
const THU_1030_LISBON = new Date('2026-12-03T10:30:00Z');
const clock = new ManualClock(THU_1030_LISBON);
let t: TestContext;

beforeAll(async () => {
  t = await createTestContext({ now: clock.now });
});
afterAll(() => t?.close());

async function memoriesOf(userId: string) {
  return t.services.prisma.memory.findMany({
    where: { userId },
    orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
    select: { id: true, content: true, supersededById: true, occurredAt: true },
  });
}

describe('zero-config memories through the extraction job', () => {
  it('writes atomic memories, supersedes the old home on a move and answers from the new one', async () => {
    const user = await t.newUser({ zoneinfo: 'Europe/Lisbon' });
    const personas = await personaIds(t, user.token);
    const { sessionId } = await startChat(t, user.token, personas.mira as string);
    const say = async (text: string) => {
      const turn = await send(t, user.token, sessionId, text);
      await t.drainJobs();
      return turn.reply.content;
    };

    const hello = await say("Hi! I'm Dana, I work as a vet in Porto.");
    // A first talk: the persona introduces itself, no "hello again".
    expect(hello).toMatch(/I'm Mira/);
    expect(hello).not.toMatch(/again/i);
    await say('I live in Porto.');
    await say("My sister Lucia is getting married next month, I'm so nervous about my speech.");
    await say('Actually I moved to Lisbon last week.');

    const rows = await memoriesOf(user.id);
    const live = rows.filter((m) => m.supersededById === null).map((m) => m.content);
    expect(live).toEqual(
      expect.arrayContaining([
        "User's name is Dana",
        'User works as a vet in Porto',
        "User's sister Lucia is getting married in January 2027",
        "User is nervous about User's speech",
        'User moved to Lisbon in the week of 23 November 2026',
        'User lives in Lisbon',
      ]),
    );
    expect(live).not.toContain('User lives in Porto');
    const lisbon = rows.find((m) => m.content === 'User lives in Lisbon');
    const porto = rows.find((m) => m.content === 'User lives in Porto');
    expect(porto?.supersededById).toBe(lisbon?.id);
    const history = await t.services.prisma.memoryHistory.findMany({
      where: { userId: user.id, action: 'SUPERSEDED' },
      select: { memoryId: true, oldContent: true, newContent: true },
    });
    expect(history).toEqual([
      {
        memoryId: porto?.id,
        oldContent: 'User lives in Porto',
        newContent: 'User lives in Lisbon',
      },
    ]);

    // The companion answers what was asked, from the live home memory.
    const where = await say('Where do I live?');
    expect(where).toContain('you live in Lisbon');
    expect(where).not.toMatch(/vet/);
  });
});
