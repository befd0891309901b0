import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/time/clock.js';
import { codesOf, createTestContext, dataOf, type TestContext } from './helpers/app.js';
import { personaIds, send, startChat } from './helpers/chat.js';

/**
 * Time as part of memory (README "Time and follow-ups"), on the offline stack with a manual
 * clock: the user's zone decides dates and when a follow-up is due; a due thread is asked once,
 * closed by the answer, expired after its window, or dismissed; strangers see none of it.
 *
 * The user lives in Auckland (NZDT, UTC+13 in December). 10:30 UTC on Thursday 3 December is
 * 23:30 there: "tomorrow" is Friday 4 December, whose day starts at 11:00 UTC on the 3rd.
 */
const AUCKLAND = 'Pacific/Auckland';
const THU_2330_AUCKLAND = new Date('2026-12-03T10:30:00Z');
const FRI_START_AUCKLAND = '2026-12-03T11:00:00.000Z';
const SAT_START_AUCKLAND = '2026-12-04T11:00:00.000Z';
const DAY = 86_400_000;

const UPDATE_VIEWER = `mutation($tz: String) { updateViewer(input: { timeZone: $tz }) { viewer { timeZone } } }`;
const FOLLOW_UPS = `query($userId: ID, $states: [FollowUpState!]) {
  followUps(userId: $userId, states: $states) {
    edges { node { id state closeReason dueAt expiresAt askedAt memory { content occurredAt layer } } }
  } }`;
const DISMISS = `mutation($id: ID!) { dismissFollowUp(input: { followUpId: $id }) { followUp { state closeReason } } }`;

interface FollowUpNode {
  id: string;
  state: string;
  closeReason: string | null;
  dueAt: string;
  expiresAt: string;
  askedAt: string | null;
  memory: { content: string; occurredAt: string | null; layer: string };
}

let t: TestContext;
const clock = new ManualClock(THU_2330_AUCKLAND);
let personas: Record<string, string>;

beforeAll(async () => {
  t = await createTestContext({ now: clock.now });
  const probe = await t.newUser();
  personas = await personaIds(t, probe.token);
});
afterAll(() => t?.close());

async function followUps(token: string, states?: string[]): Promise<FollowUpNode[]> {
  const data = dataOf(
    await t.gql<{ followUps: { edges: { node: FollowUpNode }[] } }>(FOLLOW_UPS, { states }, token),
  );
  return data.followUps.edges.map((e) => e.node);
}

async function aucklandUser() {
  const user = await t.newUser();
  const res = dataOf(await t.gql(UPDATE_VIEWER, { tz: AUCKLAND }, user.token));
  expect(res).toEqual({ updateViewer: { viewer: { timeZone: AUCKLAND } } });
  return user;
}

const ASKS = /How did it go\?/;

describe('the user time zone', () => {
  it('is UTC by default, set by updateViewer in canonical form, and validated', async () => {
    const user = await t.newUser();
    const viewer = `{ viewer { timeZone } }`;
    expect(dataOf(await t.gql(viewer, {}, user.token))).toEqual({ viewer: { timeZone: 'UTC' } });
    expect(dataOf(await t.gql(UPDATE_VIEWER, { tz: 'europe/lisbon' }, user.token))).toEqual({
      updateViewer: { viewer: { timeZone: 'Europe/Lisbon' } },
    });
    for (const bad of ['Mars/Olympus_Mons', '+02:00', '', 'x'.repeat(100), 'UTC; DROP TABLE']) {
      const res = await t.gql(UPDATE_VIEWER, { tz: bad }, user.token);
      expect(codesOf(res), bad).toEqual(['BAD_USER_INPUT']);
    }
    expect(dataOf(await t.gql(viewer, {}, user.token))).toEqual({
      viewer: { timeZone: 'Europe/Lisbon' },
    });
    expect(codesOf(await t.gql(UPDATE_VIEWER, { tz: AUCKLAND }))).toEqual(['UNAUTHENTICATED']);
  });

  it("takes a token's zoneinfo claim (OpenID Connect) and ignores an invalid one", async () => {
    const claimed = await t.newUser({ zoneinfo: 'America/Sao_Paulo' });
    expect(dataOf(await t.gql('{ viewer { timeZone } }', {}, claimed.token))).toEqual({
      viewer: { timeZone: 'America/Sao_Paulo' },
    });
    const junk = await t.newUser({ zoneinfo: 'Not/AZone' });
    expect(dataOf(await t.gql('{ viewer { timeZone } }', {}, junk.token))).toEqual({
      viewer: { timeZone: 'UTC' },
    });
  });
});

describe('dates resolve in the user zone (UTC+13 at 23:30 local)', () => {
  it('"tomorrow" is the next local day, not the next UTC day; memories filter by occurredAt', async () => {
    clock.set(THU_2330_AUCKLAND);
    const kiwi = await aucklandUser();
    const utc = await t.newUser();
    for (const user of [kiwi, utc]) {
      const chat = await startChat(t, user.token, personas.mira as string);
      await send(t, user.token, chat.sessionId, 'I have a job interview tomorrow');
    }
    await t.drainJobs();
    const occurred = async (token: string) =>
      (await followUps(token)).map((f) => [f.memory.occurredAt, f.dueAt]);
    expect(await occurred(kiwi.token)).toEqual([[FRI_START_AUCKLAND, SAT_START_AUCKLAND]]);
    // For a UTC user the same instant is still Thursday: Friday starts at midnight UTC.
    expect(await occurred(utc.token)).toEqual([
      ['2026-12-04T00:00:00.000Z', '2026-12-05T00:00:00.000Z'],
    ]);

    const range = `query($a: DateTime, $b: DateTime) {
      profileMemories(occurredAfter: $a, occurredBefore: $b) { edges { node { content occurredAt } } } }`;
    const inRange = dataOf(
      await t.gql<{ profileMemories: { edges: unknown[] } }>(
        range,
        { a: FRI_START_AUCKLAND, b: SAT_START_AUCKLAND },
        kiwi.token,
      ),
    );
    expect(inRange.profileMemories.edges).toEqual([
      {
        node: {
          content: 'User has a job interview on 4 December 2026',
          occurredAt: FRI_START_AUCKLAND,
        },
      },
    ]);
    const after = dataOf(
      await t.gql<{ profileMemories: { edges: unknown[] } }>(
        range,
        { a: SAT_START_AUCKLAND },
        kiwi.token,
      ),
    );
    expect(after.profileMemories.edges).toEqual([]);
    const reversed = await t.gql(
      range,
      { a: SAT_START_AUCKLAND, b: FRI_START_AUCKLAND },
      kiwi.token,
    );
    expect(codesOf(reversed)).toEqual(['BAD_USER_INPUT']);
  });
});

describe('the follow-up lifecycle', () => {
  it('is asked once after it is due in the user zone, not before, and closes when answered', async () => {
    clock.set(THU_2330_AUCKLAND);
    const user = await aucklandUser();
    const chat = await startChat(t, user.token, personas.mira as string);
    await send(t, user.token, chat.sessionId, 'I have a job interview tomorrow');
    await t.drainJobs();
    expect((await followUps(user.token)).map((f) => f.state)).toEqual(['OPEN']);

    // Friday 23:59 in Auckland: the interview day has not passed yet.
    clock.set(new Date(Date.parse(SAT_START_AUCKLAND) - 60_000));
    const early = await send(t, user.token, chat.sessionId, 'Still awake, long day');
    expect(early.reply.content).not.toMatch(ASKS);
    await t.drainJobs();
    expect((await followUps(user.token)).map((f) => f.state)).toEqual(['OPEN']);

    // Saturday 00:00 there: due. The next turn asks, visibly, and marks it.
    clock.set(new Date(SAT_START_AUCKLAND));
    const asked = await send(t, user.token, chat.sessionId, 'Good morning!');
    expect(asked.reply.content).toMatch(
      /you told me you have a job interview on 4 December 2026\. How did it go\?/,
    );
    const [thread] = await followUps(user.token);
    expect(thread).toMatchObject({ state: 'ASKED', closeReason: null });
    expect(thread?.askedAt).not.toBeNull();

    // The user's next message answers it: the extraction job of that turn closes it.
    const answer = await send(t, user.token, chat.sessionId, 'It went great, I got the job!');
    expect(answer.reply.content).not.toMatch(ASKS);
    await t.drainJobs();
    expect(await followUps(user.token)).toMatchObject([
      { state: 'CLOSED', closeReason: 'ANSWERED' },
    ]);
    const later = await send(t, user.token, chat.sessionId, 'Anyway, what a week');
    expect(later.reply.content).not.toMatch(ASKS);
  });

  it('a second turn does not ask again even when the user never answers', async () => {
    clock.set(THU_2330_AUCKLAND);
    const user = await aucklandUser();
    const chat = await startChat(t, user.token, personas.mira as string);
    await send(t, user.token, chat.sessionId, 'I have a dentist appointment tomorrow');
    await t.drainJobs();
    clock.set(new Date(Date.parse(SAT_START_AUCKLAND) + 3_600_000));
    const other = await startChat(t, user.token, personas.mira as string);
    expect((await send(t, user.token, other.sessionId, 'Hello')).reply.content).toMatch(ASKS);
    expect((await send(t, user.token, other.sessionId, 'Hello')).reply.content).not.toMatch(ASKS);
    expect((await send(t, user.token, chat.sessionId, 'Hi')).reply.content).not.toMatch(ASKS);
  });

  it('expires after the window: reads say EXPIRED at once, a turn persists it, none asks', async () => {
    clock.set(THU_2330_AUCKLAND);
    const user = await aucklandUser();
    const chat = await startChat(t, user.token, personas.mira as string);
    await send(t, user.token, chat.sessionId, 'I have an exam tomorrow');
    await t.drainJobs();
    const [thread] = await followUps(user.token);
    expect(Date.parse(thread?.expiresAt ?? '') - Date.parse(SAT_START_AUCKLAND)).toBe(
      t.env.FOLLOW_UP_WINDOW_DAYS * DAY,
    );
    clock.set(new Date(thread?.expiresAt ?? ''));
    expect((await followUps(user.token)).map((f) => f.state)).toEqual(['EXPIRED']);
    expect(await followUps(user.token, ['OPEN', 'ASKED'])).toEqual([]);
    expect(await followUps(user.token, ['EXPIRED'])).toHaveLength(1);
    const stored = () => t.services.prisma.followUp.findMany({ where: { userId: user.id } });
    expect((await stored()).map((f) => f.state)).toEqual(['OPEN']);
    expect((await send(t, user.token, chat.sessionId, 'Hello there')).reply.content).not.toMatch(
      ASKS,
    );
    expect((await stored()).map((f) => f.state)).toEqual(['EXPIRED']);
  });

  it('dismissed: closed and never asked; dismissing again changes nothing', async () => {
    clock.set(THU_2330_AUCKLAND);
    const user = await aucklandUser();
    const chat = await startChat(t, user.token, personas.mira as string);
    await send(t, user.token, chat.sessionId, 'I have a wedding tomorrow');
    await t.drainJobs();
    const [thread] = await followUps(user.token);
    const dismissed = dataOf(await t.gql(DISMISS, { id: thread?.id }, user.token));
    expect(dismissed).toEqual({
      dismissFollowUp: { followUp: { state: 'CLOSED', closeReason: 'DISMISSED' } },
    });
    expect(dataOf(await t.gql(DISMISS, { id: thread?.id }, user.token))).toEqual(dismissed);
    clock.set(new Date(SAT_START_AUCKLAND));
    expect((await send(t, user.token, chat.sessionId, 'Hello')).reply.content).not.toMatch(ASKS);
  });

  it('one per turn, oldest due first; relationship threads only with their persona', async () => {
    clock.set(THU_2330_AUCKLAND);
    const user = await aucklandUser();
    const mira = await startChat(t, user.token, personas.mira as string);
    await send(t, user.token, mira.sessionId, 'I will run a marathon in two days');
    await send(t, user.token, mira.sessionId, 'I have a job interview tomorrow');
    await send(t, user.token, mira.sessionId, 'We will watch a movie together tomorrow');
    await t.drainJobs();
    const threads = await followUps(user.token);
    expect(threads.map((f) => [f.memory.layer, f.dueAt]).sort()).toEqual([
      ['PROFILE', SAT_START_AUCKLAND],
      ['PROFILE', new Date(Date.parse(SAT_START_AUCKLAND) + DAY).toISOString()],
      ['RELATIONSHIP', SAT_START_AUCKLAND],
    ]);

    clock.set(new Date(Date.parse(SAT_START_AUCKLAND) + 2 * DAY));
    // Rook is the first persona the user talks to now: it may raise profile threads only.
    const rook = await startChat(t, user.token, personas.rook as string);
    const first = await send(t, user.token, rook.sessionId, 'Hello Rook');
    expect(first.reply.content).toMatch(/job interview.*How did it go\?/);
    expect(first.reply.content).not.toMatch(/marathon|movie/);
    const second = await send(t, user.token, rook.sessionId, 'Hello again');
    expect(second.reply.content).toMatch(/marathon.*How did it go\?/);
    const third = await send(t, user.token, rook.sessionId, 'And again');
    expect(third.reply.content).not.toMatch(ASKS);
    // Only Mira may ask about what the two of them planned.
    const back = await send(t, user.token, mira.sessionId, 'Hello Mira');
    expect(back.reply.content).toMatch(/movie.*How did it go\?/);
    expect((await followUps(user.token)).map((f) => f.state)).toEqual(['ASKED', 'ASKED', 'ASKED']);
  });

  it('greets by the time since the last talk with this persona', async () => {
    clock.set(THU_2330_AUCKLAND);
    const user = await aucklandUser();
    const chat = await startChat(t, user.token, personas.mira as string);
    const first = await send(t, user.token, chat.sessionId, 'I like tea');
    expect(first.reply.content).not.toMatch(/since we last talked/);
    clock.set(new Date(THU_2330_AUCKLAND.getTime() + 3 * 7 * DAY));
    const later = await send(t, user.token, chat.sessionId, 'Hello Mira');
    expect(later.reply.content).toMatch(/It's been 3 weeks since we last talked/);
  });
});

describe('who sees follow-ups', () => {
  let owner: { id: string; token: string };
  let threadId: string;
  beforeAll(async () => {
    clock.set(THU_2330_AUCKLAND);
    owner = await aucklandUser();
    const chat = await startChat(t, owner.token, personas.mira as string);
    await send(t, owner.token, chat.sessionId, 'I have a secret audition tomorrow');
    await t.drainJobs();
    threadId = (await followUps(owner.token))[0]?.id ?? '';
  });

  it('strangers see nothing: list, node(id), dismiss', async () => {
    const stranger = await t.newUser();
    expect(await followUps(stranger.token)).toEqual([]);
    const other = await t.gql(FOLLOW_UPS, { userId: owner.id }, stranger.token);
    expect(codesOf(other)).toEqual(['FORBIDDEN']);
    expect(JSON.stringify(other)).not.toContain('audition');
    const node = await t.gql<{ node: unknown }>(
      'query($id: ID!) { node(id: $id) { ... on FollowUp { state memory { content } } } }',
      { id: threadId },
      stranger.token,
    );
    expect(node.data?.node ?? null).toBeNull();
    expect(JSON.stringify(node)).not.toContain('audition');
    const dismiss = await t.gql(DISMISS, { id: threadId }, stranger.token);
    expect(codesOf(dismiss)).toEqual(['NOT_FOUND']);
    expect(await followUps(owner.token)).toMatchObject([{ state: 'OPEN' }]);
    expect(codesOf(await t.gql(FOLLOW_UPS, {}))).toEqual(['UNAUTHENTICATED']);
  });

  it('admins list any user; export carries threads; forgetting the memory removes them', async () => {
    const admin = await t.newUser({ admin: true });
    const listed = dataOf(
      await t.gql<{ followUps: { edges: { node: { id: string } }[] } }>(
        FOLLOW_UPS,
        { userId: owner.id },
        admin.token,
      ),
    );
    expect(listed.followUps.edges.map((e) => e.node.id)).toEqual([threadId]);

    const exported = dataOf(
      await t.gql<{ exportMemories: { followUps: { state: string; memoryId: string }[] } }>(
        'query { exportMemories }',
        {},
        owner.token,
      ),
    );
    expect(exported.exportMemories.followUps).toMatchObject([{ state: 'OPEN' }]);

    const forget = `mutation { forgetMemories(input: { everything: true }) { deletedCount } }`;
    dataOf(await t.gql(forget, {}, owner.token));
    expect(await followUps(owner.token)).toEqual([]);
    expect(await t.services.prisma.followUp.count({ where: { userId: owner.id } })).toBe(0);
  });
});
