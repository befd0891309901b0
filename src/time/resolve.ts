import {
  addDays,
  compareDates,
  isRealDate,
  type LocalDate,
  localDateOf,
  MONTH_NAMES,
  WEEKDAY_NAMES,
  weekdayOf,
} from './zone.js';

/**
 * The date a sentence refers to, resolved against the day it was said in the user's zone (a
 * user in Auckland at 23:30 on Thursday means Friday by "tomorrow", whatever the UTC date).
 * The offline extractor's table; the LLM extractor is told the local date and resolves itself.
 *
 * Known phrases: "today", "tonight", "tomorrow", "the day after tomorrow", "yesterday",
 * "in two days/weeks/months" (words one-twelve or digits), "next week" / "last week" (their
 * Monday), "on Friday" / "this Friday" / "next Friday" / "last Friday", "on 12 March",
 * "on March 12th", with an optional year; coarser ones: "this/last/next weekend" (its
 * Saturday), "this/last/next month", "this/last/next year", "three days/weeks/months/years ago".
 * A weekday or a date without a year is the next one for plans and the previous one for a
 * sentence in the past tense ("I went … on Friday"); "every Friday" is a habit, not a date.
 */
export interface ResolvedDate {
  date: LocalDate;
  /** The words that named it, as written. */
  phrase: string;
  /** What the phrase pins down: a day, a week (its Monday), a weekend (its Saturday), … */
  precision: DatePrecision;
  /** "in two weeks", "a week ago": a day counted from today, but not one the user named. */
  approximate: boolean;
}

export type DatePrecision = 'day' | 'week' | 'weekend' | 'month' | 'year';

const NUMBERS: Record<string, number> = {
  a: 1,
  an: 1,
  one: 1,
  two: 2,
  three: 3,
  four: 4,
  five: 5,
  six: 6,
  seven: 7,
  eight: 8,
  nine: 9,
  ten: 10,
  eleven: 11,
  twelve: 12,
};
const WEEKDAYS = WEEKDAY_NAMES.map((d) => d.toLowerCase());
const MONTH =
  '(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)';
const DAY_NUM = '(\\d{1,2})(?:st|nd|rd|th)?';
const YEAR = '(?:,?\\s+(\\d{4}))?';

const PAST = /\b(?:was|were|had|did|went|got|met|saw|came|took|gave|told|said|\w+ed)\b/i;
const FUTURE = /\b(?:will|'ll|going to|gonna|have|has|am|is|are|'m|'re|plan|planning|want to)\b/i;

function monthIndex(name: string): number {
  const lower = name.toLowerCase().slice(0, 3);
  return MONTH_NAMES.findIndex((m) => m.toLowerCase().startsWith(lower)) + 1;
}

function addMonths(d: LocalDate, n: number): LocalDate {
  const total = d.year * 12 + (d.month - 1) + n;
  const year = Math.floor(total / 12);
  const month = (total % 12) + 1;
  const last = new Date(Date.UTC(year, month, 0)).getUTCDate();
  return { year, month, day: Math.min(d.day, last) };
}

type Found = { date: LocalDate; precision?: DatePrecision; approximate?: boolean };
type Rule = readonly [
  RegExp,
  (m: RegExpExecArray, today: LocalDate, past: boolean) => LocalDate | Found | null,
];

const count = (word: string | undefined) =>
  NUMBERS[(word ?? '').toLowerCase()] ?? Number(word ?? Number.NaN);
const mondayOf = (d: LocalDate) => addDays(d, -((weekdayOf(d) + 6) % 7));

const RULES: readonly Rule[] = [
  [/\b(?:the )?day after tomorrow\b/i, (_m, today) => addDays(today, 2)],
  [/\btomorrow\b/i, (_m, today) => addDays(today, 1)],
  [/\b(?:yesterday|last night)\b/i, (_m, today) => addDays(today, -1)],
  [/\b(?:today|tonight|this (?:morning|afternoon|evening))\b/i, (_m, today) => today],
  [
    /\bin (a|an|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|\d{1,2}) (day|week|month|year)s?\b/i,
    (m, today) => shift(today, count(m[1]), m[2], 1),
  ],
  [
    /\b(a|an|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|\d{1,2}) (day|week|month|year)s? ago\b/i,
    (m, today) => shift(today, count(m[1]), m[2], -1),
  ],
  [
    /\b(this|next|last) weekend\b/i,
    (m, today) => {
      const lead = m[1]?.toLowerCase();
      const saturday = addDays(mondayOf(today), 5);
      const date = addDays(saturday, lead === 'next' ? 7 : lead === 'last' ? -7 : 0);
      return { date, precision: 'weekend' };
    },
  ],
  [
    /\b(next|last) week\b/i,
    (m, today) => ({
      date: addDays(mondayOf(today), m[1]?.toLowerCase() === 'next' ? 7 : -7),
      precision: 'week',
    }),
  ],
  [
    /\b(this|next|last) (month|year)\b/i,
    (m, today) => {
      const step = { this: 0, next: 1, last: -1 }[(m[1] ?? '').toLowerCase()] ?? 0;
      const month = (m[2] ?? '').toLowerCase() === 'month';
      const date = addMonths({ ...today, day: 1 }, month ? step : 12 * step);
      return { date, precision: month ? 'month' : 'year' };
    },
  ],
  [
    new RegExp(`\\b(?<!every )(on |this |next |last )?(${WEEKDAYS.join('|')})\\b`, 'i'),
    (m, today, past) => {
      const lead = (m[1] ?? '').trim().toLowerCase();
      const target = WEEKDAYS.indexOf((m[2] ?? '').toLowerCase());
      const ahead = (target - weekdayOf(today) + 7) % 7;
      const backward = lead === 'last' || (lead !== 'next' && lead !== 'this' && past);
      if (backward) return addDays(today, ahead === 0 ? -7 : ahead - 7);
      return addDays(today, ahead === 0 && lead === 'next' ? 7 : ahead);
    },
  ],
  [
    new RegExp(`\\b(?:on )?(?:the )?${DAY_NUM} (?:of )?${MONTH}\\b${YEAR}`, 'i'),
    (m, today, past) => calendarDate(Number(m[1]), monthIndex(m[2] ?? ''), m[3], today, past),
  ],
  [
    new RegExp(`\\b(?:on )?${MONTH} ${DAY_NUM}\\b${YEAR}`, 'i'),
    (m, today, past) => calendarDate(Number(m[2]), monthIndex(m[1] ?? ''), m[3], today, past),
  ],
];

/** "in two weeks" (direction 1) or "two weeks ago" (-1), at the precision of the unit. */
function shift(
  today: LocalDate,
  n: number,
  unitWord: string | undefined,
  direction: 1 | -1,
): Found {
  const unit = (unitWord ?? '').toLowerCase();
  if (unit === 'year') return { date: addMonths(today, 12 * n * direction), precision: 'year' };
  if (unit === 'month') return { date: addMonths(today, n * direction), precision: 'month' };
  if (unit === 'week') return { date: addDays(today, 7 * n * direction), approximate: true };
  return { date: addDays(today, n * direction) };
}

/** A day and month, with the year given or the nearest one in the sentence's direction. */
function calendarDate(
  day: number,
  month: number,
  yearText: string | undefined,
  today: LocalDate,
  past: boolean,
): LocalDate | null {
  let date: LocalDate = { year: yearText ? Number(yearText) : today.year, month, day };
  if (!isRealDate(date)) return null;
  if (!yearText) {
    const cmp = compareDates(date, today);
    if (!past && cmp < 0) date = { ...date, year: today.year + 1 };
    if (past && cmp > 0) date = { ...date, year: today.year - 1 };
  }
  return isRealDate(date) ? date : null;
}

export function resolveDatePhrase(sentence: string, said: Date, zone: string): ResolvedDate | null {
  const text = sentence.replace(/[’‘]/g, "'");
  const today = localDateOf(said, zone);
  const past = PAST.test(text) && !FUTURE.test(text);
  for (const [pattern, resolve] of RULES) {
    const m = pattern.exec(text);
    if (!m) continue;
    const found = resolve(m, today, past);
    if (!found) return null;
    const {
      date,
      precision = 'day',
      approximate = false,
    } = 'date' in found ? found : { date: found };
    return { date, phrase: m[0], precision, approximate };
  }
  return null;
}

/**
 * The resolved date as words a memory can keep for good: "on 4 December 2026", "around 17
 * December 2026", "in the week of 7 December 2026", "on the weekend of 5 December 2026",
 * "in January 2027", "in 2027". English, like the offline extractor that writes them.
 */
export function absoluteDate(found: Pick<ResolvedDate, 'date' | 'precision' | 'approximate'>) {
  const { day, month, year } = found.date;
  const dayMonthYear = `${day} ${MONTH_NAMES[month - 1]} ${year}`;
  switch (found.precision) {
    case 'year':
      return `in ${year}`;
    case 'month':
      return `in ${MONTH_NAMES[month - 1]} ${year}`;
    case 'week':
      return `in the week of ${dayMonthYear}`;
    case 'weekend':
      return `on the weekend of ${dayMonthYear}`;
    default:
      return `${found.approximate ? 'around' : 'on'} ${dayMonthYear}`;
  }
}
