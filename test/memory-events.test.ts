import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openDatabase } from '../src/db/client.js';
import { silentLogger } from '../src/logger.js';
import { MemoryEvents } from '../src/memory/events.js';
import { createTestContext, type TestContext } from './helpers/app.js';
import { tier } from './helpers/database.js';
import { within } from './helpers/wait.js';

/** The event bus itself: bounded per-subscriber buffers, and delivery across processes. */
let t: TestContext;
beforeAll(async () => {
  t = await createTestContext();
});
afterAll(() => t?.close());

const event = (userId: string, memoryId: string) => ({
  kind: 'ADDED' as const,
  userId,
  memoryId,
  instanceId: null,
});

it('keeps the newest events of a slow subscriber and says how many it dropped', async () => {
  const bus = new MemoryEvents({
    db: t.database.db,
    prisma: t.services.prisma,
    logger: silentLogger,
    buffer: 2,
    maxPerUser: 1,
  });
  try {
    const user = randomUUID();
    const events = await bus.subscribe(user);
    const ids = Array.from({ length: 5 }, () => randomUUID());
    for (const id of ids) await bus.publish([event(user, id)]);
    await bus.publish([event(randomUUID(), randomUUID())]); // someone else's: never delivered
    const first = await within(events.next(), 10_000, 'first event');
    const second = await within(events.next(), 10_000, 'second event');
    expect(first.value).toMatchObject({ memoryId: ids[3], missedBefore: 3 });
    expect(second.value).toMatchObject({ memoryId: ids[4], missedBefore: 0 });
    await events.return?.();
    expect(bus.subscriberCount(user)).toBe(0);
  } finally {
    await bus.close();
  }
});

it.runIf(tier === 'postgres')(
  'delivers events another process publishes (NOTIFY → this process LISTENs)',
  async () => {
    const url = t.database.url;
    if (!url) throw new Error('no database url');
    // Another process's view: its own pool and its own bus, publishing only.
    const other = await openDatabase({ url, poolSize: 1, logger: silentLogger, migrate: false });
    const publisher = new MemoryEvents({
      db: other,
      prisma: other.prisma,
      logger: silentLogger,
      buffer: 10,
      maxPerUser: 1,
    });
    try {
      const user = randomUUID();
      const events = await t.services.memoryEvents.subscribe(user);
      const id = randomUUID();
      await publisher.publish([event(user, id)]);
      const got = await within(events.next(), 15_000, 'the event from the other process');
      expect(got.value).toMatchObject({ kind: 'ADDED', userId: user, memoryId: id });
      await events.return?.();
    } finally {
      await publisher.close();
      await other.close();
    }
  },
);
