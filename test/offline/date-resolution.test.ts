import { describe, expect, it } from 'vitest';
import { OfflineExtractor } from '../../src/memory/extract-offline.js';
import { absoluteDate, resolveDatePhrase } from '../../src/time/resolve.js';
import { canonicalTimeZone, isoDate, startOfLocalDay } from '../../src/time/zone.js';

/** 10:30 UTC on Thursday 3 December 2026: 23:30 the same Thursday in Auckland (UTC+13). */
const SAID = new Date('2026-12-03T10:30:00Z');

describe('resolveDatePhrase in the user zone', () => {
  it.each([
    ['I have an interview tomorrow', 'Pacific/Auckland', '2026-12-04'],
    ['I have an interview tomorrow', 'America/Los_Angeles', '2026-12-04'],
    ['I have an interview tomorrow', 'UTC', '2026-12-04'],
    ['My exam is on Friday', 'Pacific/Auckland', '2026-12-04'],
    ['My exam is on Friday', 'UTC', '2026-12-04'],
    ['I went climbing on Friday', 'Pacific/Auckland', '2026-11-27'],
    ['I have a trip next week', 'Pacific/Auckland', '2026-12-07'],
    ['My wedding is on 12 March', 'Pacific/Auckland', '2027-03-12'],
    ['My wedding is on March 12th, 2028', 'UTC', '2028-03-12'],
    ['I fly to Rome in two weeks', 'Pacific/Auckland', '2026-12-17'],
    ['The party is in 3 days', 'UTC', '2026-12-06'],
    ['I had a cold yesterday', 'Pacific/Auckland', '2026-12-02'],
  ])('%s (%s) → %s', (text, zone, expected) => {
    const found = resolveDatePhrase(text, SAID, zone);
    expect(found && isoDate(found.date)).toBe(expected);
  });

  it('differs by zone at the date line: 23:30 Thursday in Auckland is 10:30 Thursday UTC, but 05:30 Friday in Kiritimati', () => {
    expect(
      isoDate(
        resolveDatePhrase('tomorrow', SAID, 'Pacific/Kiritimati')?.date ?? {
          year: 0,
          month: 0,
          day: 0,
        },
      ),
    ).toBe('2026-12-05');
  });

  it.each([
    ['My sister is getting married next month', 'in January 2027'],
    ['I started a course last month', 'in November 2026'],
    ['We are moving next year', 'in 2027'],
    ['I graduated two years ago', 'in 2024'],
    ['I broke my wrist three days ago', 'on 30 November 2026'],
    ['I have a recital in two weeks', 'around 17 December 2026'],
    ['I moved last week', 'in the week of 23 November 2026'],
    ["I'm visiting my parents this weekend", 'on the weekend of 5 December 2026'],
    ['I went to a concert last night', 'on 2 December 2026'],
  ])('%s → "%s" (UTC)', (text, expected) => {
    const found = resolveDatePhrase(text, SAID, 'UTC');
    expect(found && absoluteDate(found)).toBe(expected);
  });

  it('a habit is not a date: "every Sunday"', () => {
    expect(resolveDatePhrase('I play chess every Sunday', SAID, 'UTC')).toBeNull();
  });

  it('finds nothing without a date, and no impossible date', () => {
    expect(resolveDatePhrase('I am a nurse', SAID, 'UTC')).toBeNull();
    expect(resolveDatePhrase('My party is on 31 February', SAID, 'UTC')).toBeNull();
  });

  it('validates zones with Intl and spells them canonically', () => {
    expect(canonicalTimeZone('pacific/auckland')).toBe('Pacific/Auckland');
    expect(canonicalTimeZone('Nowhere/Atlantis')).toBeNull();
    expect(canonicalTimeZone('+13:00')).toBeNull();
  });
});

describe('the offline extractor dates what it keeps', () => {
  it('sets occurredAt to the start of the local day, and makes a dated statement an event', async () => {
    const [memory] = await new OfflineExtractor().extract({
      userMessage: 'I have a piano recital tomorrow.',
      reply: '',
      priorMessages: [],
      messageTime: SAID,
      timeZone: 'Pacific/Auckland',
      personaName: 'Mira',
      existing: [],
    });
    expect(memory).toMatchObject({
      content: 'User has a piano recital on 4 December 2026',
      category: 'EVENT',
      occurredAt: startOfLocalDay({ year: 2026, month: 12, day: 4 }, 'Pacific/Auckland'),
    });
    expect(memory?.occurredAt?.toISOString()).toBe('2026-12-03T11:00:00.000Z');
  });

  it('"I moved to Porto" supersedes the stored "User lives in Lisbon"', async () => {
    const out = await new OfflineExtractor().extract({
      userMessage: 'I moved to Porto.',
      reply: '',
      priorMessages: [],
      messageTime: SAID,
      personaName: 'Mira',
      existing: [{ id: 'old', content: 'User lives in Lisbon', layer: 'PROFILE' }],
    });
    expect(out).toContainEqual(
      expect.objectContaining({
        content: 'User lives in Porto',
        supersedes: 'old',
        layer: 'PROFILE',
      }),
    );
  });
});
