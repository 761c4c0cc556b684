/**
 * Business days of the program: Monday to Friday, except US federal holidays
 * and the weekdays on which they are observed.
 *
 * Holidays come from `date-holidays` (country `US`, type `public`). Observed
 * days follow 5 U.S.C. 6103(b): a holiday on a Saturday is observed the Friday
 * before, one on a Sunday the Monday after. date-holidays already lists most
 * of these as "substitute day" entries but not all (e.g. Veterans Day on a
 * weekend), so the rule is applied here to every holiday; a New Year's Day on a
 * Saturday therefore closes 31 December of the year before.
 *
 * @see https://www.law.cornell.edu/uscode/text/5/6103
 * @see https://www.opm.gov/policy-data-oversight/pay-leave/federal-holidays/
 * @packageDocumentation
 */
import type Holidays from 'date-holidays';
import { addDays, dayOfWeek, parseCivilDate, type CivilDate } from './zoned-date';

/** Which calendar days are working days. */
export interface BusinessCalendar {
  /** True for a weekday that is not a holiday or program closure. */
  isBusinessDay(date: CivilDate): boolean;
  /** The holiday or closure name of a date, if it has one. */
  closureName(date: CivilDate): string | undefined;
}

let holidaySource: Holidays | undefined;
const federalByYear = new Map<number, ReadonlyMap<CivilDate, string>>();

function isWeekend(date: CivilDate): boolean {
  const day = dayOfWeek(date);
  return day === 0 || day === 6;
}

function rawPublicHolidays(year: number): { date: CivilDate; name: string }[] {
  // Required on first use: the package and its rule data take ~0.15 s to load, which processes that
  // never reckon a business day (most test files, the PDF thread) are spared.
  holidaySource ??= new (require('date-holidays') as typeof Holidays)('US');
  return holidaySource
    .getHolidays(year)
    .filter((h) => h.type === 'public')
    .map((h) => ({ date: h.date.slice(0, 10), name: h.name }));
}

/**
 * US federal holidays and their observed weekdays falling in `year`, date → name.
 * Weekend dates of holidays are included too (they are not business days anyway).
 */
export function usFederalHolidays(year: number): ReadonlyMap<CivilDate, string> {
  const cached = federalByYear.get(year);
  if (cached) return cached;
  const days = new Map<CivilDate, string>();
  const prefix = `${year}-`;
  // A 1 January on a Saturday of year+1 is observed on 31 December of `year`.
  for (const holiday of [...rawPublicHolidays(year), ...rawPublicHolidays(year + 1)]) {
    const candidates: [CivilDate, string][] = [[holiday.date, holiday.name]];
    const weekday = dayOfWeek(holiday.date);
    if (weekday === 6) candidates.push([addDays(holiday.date, -1), `${holiday.name} (observed)`]);
    if (weekday === 0) candidates.push([addDays(holiday.date, 1), `${holiday.name} (observed)`]);
    for (const [date, name] of candidates) {
      if (date.startsWith(prefix) && !days.has(date)) days.set(date, name);
    }
  }
  federalByYear.set(year, days);
  return days;
}

/** Options for {@link createUsFederalCalendar}. */
export interface CalendarOptions {
  /** Extra program closures (e.g. the day after Thanksgiving), `YYYY-MM-DD`. */
  extraClosedDates?: Iterable<CivilDate>;
}

/** Monday–Friday minus US federal holidays (observed) and any extra closures. */
export function createUsFederalCalendar(options: CalendarOptions = {}): BusinessCalendar {
  const extra = new Set<CivilDate>();
  for (const date of options.extraClosedDates ?? []) {
    parseCivilDate(date);
    extra.add(date);
  }
  const closureName = (date: CivilDate): string | undefined => {
    const { year } = parseCivilDate(date);
    return usFederalHolidays(year).get(date) ?? (extra.has(date) ? 'Program closure' : undefined);
  };
  return {
    closureName,
    isBusinessDay: (date) => !isWeekend(date) && closureName(date) === undefined,
  };
}

/**
 * The business day that is `count` business days after `start` (`start` itself never counts),
 * skipping also the days `skip` returns true for.
 * @param count - a positive integer
 */
export function addBusinessDays(
  calendar: BusinessCalendar,
  start: CivilDate,
  count: number,
  skip: (date: CivilDate) => boolean = () => false,
): CivilDate {
  if (!Number.isInteger(count) || count < 1) throw new RangeError('count must be a positive integer');
  let date = start;
  let counted = 0;
  while (counted < count) {
    date = addDays(date, 1);
    if (calendar.isBusinessDay(date) && !skip(date)) counted += 1;
  }
  return date;
}
