/**
 * Calendar arithmetic in a user's IANA time zone, on the platform's Intl data (ICU, updated
 * with Node). Hand-written rather than a date library: the project needs four operations
 * (a zone's local date, the instant a local day starts, day offsets, short labels), and Intl
 * already carries the zone rules a library would otherwise ship again.
 */

export const DEFAULT_TIME_ZONE = 'UTC';
const MAX_ZONE_CHARS = 64;
const DAY_MS = 86_400_000;

export interface LocalDate {
  year: number;
  /** 1-12 */
  month: number;
  day: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function partsFormatter(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    // Bounded by the number of valid zones (~600): only validated names get here.
    formatters.set(zone, f);
  }
  return f;
}

/**
 * The canonical name of a valid IANA zone ("europe/paris" → "Europe/Paris"), or null. Offsets
 * such as "+02:00" are refused: a fixed offset has no daylight saving, so it would drift.
 */
export function canonicalTimeZone(input: string): string | null {
  const zone = input.trim();
  if (zone === '' || zone.length > MAX_ZONE_CHARS || /^[+-]/.test(zone)) return null;
  // The default zone, and most users' stored one, is canonical as it is: answered without
  // building an Intl formatter, whose first construction in a process loads ICU's locale and
  // zone data (~10-30 ms at a woken machine's first turn, BENCHMARKS.md §4).
  if (zone === DEFAULT_TIME_ZONE) return DEFAULT_TIME_ZONE;
  const known = canonical.get(zone);
  if (known) return known;
  try {
    const name = new Intl.DateTimeFormat('en-US', { timeZone: zone }).resolvedOptions().timeZone;
    // Every turn asks (the user's stored zone): building a formatter each time cost ~5 % of a
    // turn's CPU. Only valid spellings are kept, and at most CANONICAL_CAP of them.
    if (canonical.size >= CANONICAL_CAP) canonical.clear();
    canonical.set(zone, name);
    return name;
  } catch {
    return null;
  }
}

const CANONICAL_CAP = 2048;
const canonical = new Map<string, string>();

/** A zone read back from storage or a token; anything unusable falls back to UTC. */
export function zoneOrUtc(zone: string | null | undefined): string {
  return (zone && canonicalTimeZone(zone)) || DEFAULT_TIME_ZONE;
}

interface WallClock extends LocalDate {
  hour: number;
  minute: number;
  second: number;
}

function wallClock(instant: Date, zone: string): WallClock {
  // UTC (the default zone) needs no zone rules: Date's own UTC fields, without ICU.
  if (zone === 'UTC') {
    return {
      year: instant.getUTCFullYear(),
      month: instant.getUTCMonth() + 1,
      day: instant.getUTCDate(),
      hour: instant.getUTCHours(),
      minute: instant.getUTCMinutes(),
      second: instant.getUTCSeconds(),
    };
  }
  const out: Record<string, number> = {};
  for (const p of partsFormatter(zone).formatToParts(instant)) {
    if (p.type !== 'literal') out[p.type] = Number(p.value);
  }
  return {
    year: out.year ?? 1970,
    month: out.month ?? 1,
    day: out.day ?? 1,
    hour: (out.hour ?? 0) % 24,
    minute: out.minute ?? 0,
    second: out.second ?? 0,
  };
}

/** Milliseconds the zone is ahead of UTC at `instant`. */
export function offsetMs(instant: Date, zone: string): number {
  const w = wallClock(instant, zone);
  const asUtc = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
  return asUtc - Math.floor(instant.getTime() / 1000) * 1000;
}

export function localDateOf(instant: Date, zone: string): LocalDate {
  const { year, month, day } = wallClock(instant, zone);
  return { year, month, day };
}

export function localTimeOf(instant: Date, zone: string): { hour: number; minute: number } {
  const { hour, minute } = wallClock(instant, zone);
  return { hour, minute };
}

/** 0 = Sunday … 6 = Saturday. */
export function weekdayOf(d: LocalDate): number {
  return new Date(Date.UTC(d.year, d.month - 1, d.day)).getUTCDay();
}

export function addDays(d: LocalDate, days: number): LocalDate {
  const t = new Date(Date.UTC(d.year, d.month - 1, d.day) + days * DAY_MS);
  return { year: t.getUTCFullYear(), month: t.getUTCMonth() + 1, day: t.getUTCDate() };
}

/** Whole days from `a` to `b` (positive when b is later). */
export function daysBetween(a: LocalDate, b: LocalDate): number {
  return Math.round(
    (Date.UTC(b.year, b.month - 1, b.day) - Date.UTC(a.year, a.month - 1, a.day)) / DAY_MS,
  );
}

export function compareDates(a: LocalDate, b: LocalDate): number {
  return daysBetween(b, a);
}

/**
 * The instant the local day starts in `zone`. Two passes settle days whose offset changes
 * (daylight saving); a day starting inside a gap starts at the first instant after it.
 */
export function startOfLocalDay(d: LocalDate, zone: string): Date {
  const wall = Date.UTC(d.year, d.month - 1, d.day);
  let t = wall - offsetMs(new Date(wall), zone);
  const second = wall - offsetMs(new Date(t), zone);
  if (second !== t) t = Math.min(t, second);
  return new Date(t);
}

/** Whether a calendar date exists (31 February does not). */
export function isRealDate(d: LocalDate): boolean {
  const t = new Date(Date.UTC(d.year, d.month - 1, d.day));
  return (
    t.getUTCFullYear() === d.year && t.getUTCMonth() === d.month - 1 && t.getUTCDate() === d.day
  );
}

export const WEEKDAY_NAMES = [
  'Sunday',
  'Monday',
  'Tuesday',
  'Wednesday',
  'Thursday',
  'Friday',
  'Saturday',
] as const;
export const MONTH_NAMES = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
] as const;

/** "Fri 5 Dec", with the year when it is not `reference`'s year: "Fri 5 Dec 2025". */
export function shortDate(d: LocalDate, reference?: LocalDate): string {
  const base = `${WEEKDAY_NAMES[weekdayOf(d)]?.slice(0, 3)} ${d.day} ${MONTH_NAMES[d.month - 1]?.slice(0, 3)}`;
  return reference && reference.year === d.year ? base : `${base} ${d.year}`;
}

export function isoDate(d: LocalDate): string {
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${pad(d.year, 4)}-${pad(d.month)}-${pad(d.day)}`;
}

/** "UTC+13:00", "UTC-03:30", "UTC". */
export function offsetLabel(instant: Date, zone: string): string {
  const minutes = Math.round(offsetMs(instant, zone) / 60_000);
  if (minutes === 0) return 'UTC';
  const abs = Math.abs(minutes);
  const hh = String(Math.floor(abs / 60)).padStart(2, '0');
  const mm = String(abs % 60).padStart(2, '0');
  return `UTC${minutes < 0 ? '-' : '+'}${hh}:${mm}`;
}

/** "Thursday 3 December 2026, 23:30" in the zone. */
export function localDateTimeLabel(instant: Date, zone: string): string {
  const d = localDateOf(instant, zone);
  const { hour, minute } = localTimeOf(instant, zone);
  const hm = `${String(hour).padStart(2, '0')}:${String(minute).padStart(2, '0')}`;
  return `${WEEKDAY_NAMES[weekdayOf(d)]} ${d.day} ${MONTH_NAMES[d.month - 1]} ${d.year}, ${hm}`;
}

/**
 * How long ago `then` was, counted in the user's calendar days: "today", "yesterday",
 * "4 days ago", "3 weeks ago", "2 months ago", "over a year ago".
 */
export function ageLabel(then: Date, now: Date, zone: string): string {
  const days = daysBetween(localDateOf(then, zone), localDateOf(now, zone));
  if (days <= 0) return 'today';
  if (days === 1) return 'yesterday';
  if (days < 14) return `${days} days ago`;
  if (days < 60) return `${Math.floor(days / 7)} weeks ago`;
  if (days < 365) return `${Math.floor(days / 30)} months ago`;
  return days < 730 ? 'over a year ago' : `${Math.floor(days / 365)} years ago`;
}
