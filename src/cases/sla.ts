/**
 * The report's service-level clock.
 *
 * The report is due {@link SLA_TARGET_BUSINESS_DAYS} business days (target) and
 * {@link SLA_LIMIT_BUSINESS_DAYS} business days (limit) after all records are in,
 * counted in the program's time zone on the {@link BusinessCalendar} (weekdays
 * minus US federal holidays, observed days included).
 *
 * Rules, precisely:
 * - **Day 0** is the local calendar date on which records became complete, whatever
 *   the hour (even a weekend or holiday). Counting starts the day after.
 * - A **counted day** is a business day after day 0 on which the clock was never
 *   paused. A business day touched by a pause at any moment (local 00:00 to 24:00,
 *   pauses are half-open `[from, to)`) does not count: asking the family for
 *   information costs the reviewer that whole day, and every such day pushes both
 *   due dates out by one business day. Zero-length pauses touch nothing.
 * - **Due dates**: the target (limit) is due at the end of the 5th (7th) counted
 *   day — `targetDue` is the last millisecond of that local day; the case is
 *   overdue once `now` is later than that.
 * - **While a pause is open** the due dates are provisional: they are computed as
 *   if the clock resumed at `now`, so they move out by one business day for each
 *   further business day the pause stays open. `paused` is true.
 * - `businessDaysUsed` counts the counted days from day 1 up to and including today.
 * - Pause information after `now` is ignored (a pause starting later has not begun).
 * @packageDocumentation
 */
import { addBusinessDays, createUsFederalCalendar, type BusinessCalendar } from './business-calendar';
import { addDays, localDateOf, startOfLocalDay, type CivilDate } from './zoned-date';

/** Business days from records complete to the report's target due date. */
export const SLA_TARGET_BUSINESS_DAYS = 5;
/** Business days from records complete to the report's limit due date. */
export const SLA_LIMIT_BUSINESS_DAYS = 7;
/** The program's time zone. */
export const PROGRAM_TIME_ZONE = 'America/New_York';

/** A period during which the case awaited information; `to` absent while still open. */
export interface SlaPause {
  from: Date;
  to?: Date | undefined;
}

/** Inputs of {@link computeSla}. */
export interface SlaInput {
  recordsCompleteAt: Date;
  pauses?: readonly SlaPause[];
  now: Date;
  /** IANA zone of the business calendar; default {@link PROGRAM_TIME_ZONE}. */
  timeZone?: string;
  /** Default {@link SLA_TARGET_BUSINESS_DAYS}. */
  targetBusinessDays?: number;
  /** Default {@link SLA_LIMIT_BUSINESS_DAYS}. */
  limitBusinessDays?: number;
  /** Default: US federal business calendar. */
  calendar?: BusinessCalendar;
}

/** Where the clock stands at `now`. */
export interface SlaState {
  /** Last instant of the target due day (program time). */
  targetDue: Date;
  /** Last instant of the limit due day (program time). */
  limitDue: Date;
  /** The target due day, `YYYY-MM-DD` in program time. */
  targetDueDate: CivilDate;
  /** The limit due day, `YYYY-MM-DD` in program time. */
  limitDueDate: CivilDate;
  /** True while a pause is open at `now` (due dates are then provisional). */
  paused: boolean;
  /** Counted business days from day 1 through today. */
  businessDaysUsed: number;
  /** Business days after day 0, through today, that did not count because of a pause. */
  pausedBusinessDays: number;
  overdue: 'none' | 'target' | 'limit';
}

let defaultCalendar: BusinessCalendar | undefined;

function assertInstant(value: Date, what: string): void {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw new RangeError(`${what} must be a valid date`);
}

/** Local dates touched by the pauses, as known at `now`. */
function pausedDates(pauses: readonly SlaPause[], now: Date, timeZone: string): { dates: Set<CivilDate>; open: boolean } {
  const dates = new Set<CivilDate>();
  let open = false;
  pauses.forEach((pause, i) => {
    assertInstant(pause.from, `pauses[${i}].from`);
    if (pause.to !== undefined) {
      assertInstant(pause.to, `pauses[${i}].to`);
      if (pause.to < pause.from) throw new RangeError(`pauses[${i}] ends before it starts`);
      if (pause.to.getTime() === pause.from.getTime()) return;
    }
    if (pause.from > now) return;
    const end = pause.to;
    const stillOpen = end === undefined || end > now;
    open ||= stillOpen;
    // The pause is half-open: a pause ending at local midnight does not touch the next day.
    const last = end === undefined || end > now ? localDateOf(now, timeZone) : localDateOf(new Date(end.getTime() - 1), timeZone);
    for (let d = localDateOf(pause.from, timeZone); d <= last; d = addDays(d, 1)) dates.add(d);
  });
  return { dates, open };
}

function endOfLocalDay(date: CivilDate, timeZone: string): Date {
  return new Date(startOfLocalDay(addDays(date, 1), timeZone).getTime() - 1);
}

/**
 * Computes due dates, pause state, days used and overdue flags of a case whose
 * records became complete at `recordsCompleteAt`.
 * @throws RangeError for invalid dates, a pause ending before it starts, or bad day counts
 */
export function computeSla(input: SlaInput): SlaState {
  const timeZone = input.timeZone ?? PROGRAM_TIME_ZONE;
  const target = input.targetBusinessDays ?? SLA_TARGET_BUSINESS_DAYS;
  const limit = input.limitBusinessDays ?? SLA_LIMIT_BUSINESS_DAYS;
  if (!Number.isInteger(target) || !Number.isInteger(limit) || target < 1 || limit < target) {
    throw new RangeError('Business day counts must be integers with 1 ≤ target ≤ limit');
  }
  assertInstant(input.recordsCompleteAt, 'recordsCompleteAt');
  assertInstant(input.now, 'now');
  const calendar = input.calendar ?? (defaultCalendar ??= createUsFederalCalendar());

  const day0 = localDateOf(input.recordsCompleteAt, timeZone);
  const today = localDateOf(input.now, timeZone);
  const { dates: paused, open } = pausedDates(input.pauses ?? [], input.now, timeZone);
  const isPaused = (date: CivilDate): boolean => paused.has(date);

  const targetDueDate = addBusinessDays(calendar, day0, target, isPaused);
  const limitDueDate = addBusinessDays(calendar, day0, limit, isPaused);
  const targetDue = endOfLocalDay(targetDueDate, timeZone);
  const limitDue = endOfLocalDay(limitDueDate, timeZone);

  let businessDaysUsed = 0;
  let pausedBusinessDays = 0;
  for (let d = addDays(day0, 1); d <= today; d = addDays(d, 1)) {
    if (!calendar.isBusinessDay(d)) continue;
    if (paused.has(d)) pausedBusinessDays += 1;
    else businessDaysUsed += 1;
  }

  const overdue = input.now > limitDue ? 'limit' : input.now > targetDue ? 'target' : 'none';
  return { targetDue, limitDue, targetDueDate, limitDueDate, paused: open, businessDaysUsed, pausedBusinessDays, overdue };
}

/**
 * When a case's report target counts as due soon (`sob_cases_sla{standing="due_soon"}`): the last
 * instant of the business day after today (in `timeZone`), today being `now`'s local date. A target
 * due by then (targets fall on the last instant of a local day, {@link computeSla}) is due within one
 * business day of the calendar the clock counts. On a Thursday before a Friday holiday that is the end
 * of Monday; on a Saturday, the end of Monday.
 */
export function dueSoonBy(now: Date, timeZone: string): Date {
  const calendar = (defaultCalendar ??= createUsFederalCalendar());
  return endOfLocalDay(addBusinessDays(calendar, localDateOf(now, timeZone), 1), timeZone);
}
