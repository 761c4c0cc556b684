/**
 * Calendar dates in an IANA time zone, without a date library.
 *
 * A "civil date" is a `YYYY-MM-DD` string naming a day on the wall calendar of
 * some time zone. Arithmetic on civil dates is done in UTC, where every day has
 * 24 hours; conversion to and from instants uses `Intl.DateTimeFormat`.
 * @packageDocumentation
 */

/** A calendar date written `YYYY-MM-DD`. */
export type CivilDate = string;

const CIVIL_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DAY_MS = 86_400_000;
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (!formatter) {
    // Throws RangeError for an unknown time zone, which is what callers want.
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

interface WallClock {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

function wallClock(instant: Date, timeZone: string): WallClock {
  const fields: Record<string, number> = {};
  for (const part of formatterFor(timeZone).formatToParts(instant)) {
    if (part.type !== 'literal') fields[part.type] = Number(part.value);
  }
  return {
    year: fields.year ?? NaN,
    month: fields.month ?? NaN,
    day: fields.day ?? NaN,
    hour: fields.hour ?? NaN,
    minute: fields.minute ?? NaN,
    second: fields.second ?? NaN,
  };
}

function assertValidInstant(instant: Date, what: string): void {
  if (Number.isNaN(instant.getTime())) throw new RangeError(`${what} is not a valid date`);
}

/** Parses a civil date into its parts; throws RangeError for malformed or impossible dates. */
export function parseCivilDate(date: CivilDate): { year: number; month: number; day: number } {
  const match = CIVIL_DATE.exec(date);
  if (!match) throw new RangeError(`"${date}" is not a date in the form YYYY-MM-DD`);
  const year = Number(match[1]);
  const month = Number(match[2]);
  const day = Number(match[3]);
  const probe = new Date(Date.UTC(year, month - 1, day));
  if (probe.getUTCFullYear() !== year || probe.getUTCMonth() !== month - 1 || probe.getUTCDate() !== day) {
    throw new RangeError(`"${date}" is not a real calendar date`);
  }
  return { year, month, day };
}

/** True when `date` is a well-formed, real `YYYY-MM-DD` date. */
export function isCivilDate(date: string): boolean {
  try {
    parseCivilDate(date);
    return true;
  } catch {
    return false;
  }
}

function fromUtcMs(ms: number): CivilDate {
  return new Date(ms).toISOString().slice(0, 10);
}

function toUtcMs(date: CivilDate): number {
  const { year, month, day } = parseCivilDate(date);
  return Date.UTC(year, month - 1, day);
}

/** The calendar date on the wall in `timeZone` at `instant`. */
export function localDateOf(instant: Date, timeZone: string): CivilDate {
  assertValidInstant(instant, 'The instant');
  const { year, month, day } = wallClock(instant, timeZone);
  return fromUtcMs(Date.UTC(year, month - 1, day));
}

/** Offset of `timeZone` from UTC at `instantMs`, in milliseconds (negative west of Greenwich). */
function offsetMs(instantMs: number, timeZone: string): number {
  const whole = Math.floor(instantMs / 1000) * 1000;
  const w = wallClock(new Date(whole), timeZone);
  return Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second) - whole;
}

/**
 * The instant at which `date` begins (00:00 wall time) in `timeZone`.
 * If midnight does not exist that day (a DST jump at 00:00), the first instant after the gap.
 */
export function startOfLocalDay(date: CivilDate, timeZone: string): Date {
  const wallMidnight = toUtcMs(date);
  let guess = wallMidnight - offsetMs(wallMidnight, timeZone);
  guess = wallMidnight - offsetMs(guess, timeZone);
  // Midnight skipped by a DST jump: the guess lands on the previous day. The day then starts at
  // the transition, found by bisection within the next few hours.
  if (localDateOf(new Date(guess), timeZone) < date) {
    let before = guess;
    let after = guess + DAY_MS / 4;
    while (after - before > 1) {
      const mid = Math.floor((before + after) / 2);
      if (localDateOf(new Date(mid), timeZone) < date) before = mid;
      else after = mid;
    }
    guess = after;
  }
  // Midnight repeated by a fall-back at 01:00 (clocks back to 00:00: Asia/Gaza until 2021,
  // Antarctica/Casey): the guess may be the second midnight. The day began at the first, the earliest
  // instant of its date, found by bisection within the hours before.
  if (localDateOf(new Date(guess - 1), timeZone) === date) {
    let before = guess - DAY_MS / 4;
    let after = guess;
    while (after - before > 1) {
      const mid = Math.floor((before + after) / 2);
      if (localDateOf(new Date(mid), timeZone) < date) before = mid;
      else after = mid;
    }
    guess = after;
  }
  return new Date(guess);
}

/** `date` plus `days` calendar days (negative to go back). */
export function addDays(date: CivilDate, days: number): CivilDate {
  return fromUtcMs(toUtcMs(date) + days * DAY_MS);
}

/** Day of the week of `date`: 0 = Sunday … 6 = Saturday. */
export function dayOfWeek(date: CivilDate): number {
  return new Date(toUtcMs(date)).getUTCDay();
}

/** Whole calendar years between `from` and `on` (a person's age on a date; birthdays on 29 Feb count from 1 Mar in common years). */
export function wholeYearsBetween(from: CivilDate, on: CivilDate): number {
  const a = parseCivilDate(from);
  const b = parseCivilDate(on);
  let years = b.year - a.year;
  if (b.month < a.month || (b.month === a.month && b.day < a.day)) years -= 1;
  return years;
}
