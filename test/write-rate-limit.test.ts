import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from './helpers/app.js';
import { personaIds, send, startChat } from './helpers/chat.js';

let t: TestContext;
beforeAll(async () => {
  t = await createTestContext({ env: { MEMORY_WRITES_PER_MINUTE: '2' } });
});
afterAll(() => t?.close());

describe('per-user memory write rate limit', () => {
  it('defers jobs over the budget instead of dropping them', async () => {
    const user = await t.newUser();
    const other = await t.newUser();
    const { sessionId } = await startChat(
      t,
      user.token,
      (await personaIds(t, user.token)).mira as string,
    );
    await send(t, user.token, sessionId, 'I love jazz');
    await send(t, user.token, sessionId, 'I love sushi');
    await send(t, user.token, sessionId, 'I love chess');
    const o = await startChat(t, other.token, (await personaIds(t, other.token)).mira as string);
    await send(t, other.token, o.sessionId, 'I love tea');
    await t.drainJobs();

    // Two writes fit the user's minute; the third turn waits. Other users are unaffected.
    expect(await t.services.prisma.memory.count({ where: { userId: user.id } })).toBe(2);
    expect(await t.services.prisma.memory.count({ where: { userId: other.id } })).toBe(1);
    const waiting = await t.services.prisma.job.findFirstOrThrow({
      where: { userId: user.id, status: 'PENDING' },
    });
    expect(waiting.attempts).toBe(0);
    expect(waiting.runAt.getTime()).toBeGreaterThan(Date.now() + 30_000);

    // Once the window has passed, the deferred job writes its memory.
    await t.services.prisma.$executeRaw`
      UPDATE memory_history SET created_at = created_at - interval '2 minutes'`;
    await t.services.prisma.job.update({ where: { id: waiting.id }, data: { runAt: new Date() } });
    await t.drainJobs();
    expect(await t.services.prisma.memory.count({ where: { userId: user.id } })).toBe(3);
  });
});
