/**
 * When a case's report target counts as due soon (`sob_cases_sla{standing="due_soon"}`): it falls
 * by the end of the next business day of the program's calendar, the one the SLA clock counts
 * (src/cases/sla.ts: weekdays minus US federal holidays, observed days included).
 * @packageDocumentation
 */
import { addBusinessDays, createUsFederalCalendar, type BusinessCalendar } from '../cases/business-calendar';
import { addDays, localDateOf, startOfLocalDay } from '../cases/zoned-date';

let defaultCalendar: BusinessCalendar | undefined;

/**
 * The last instant of the business day after today (in `timeZone`), today being `now`'s local date:
 * a target due by then (targets fall on the last instant of a local day, see `computeSla`) is due
 * within one business day. On a Thursday before a Friday holiday that is the end of Monday; on a
 * Saturday, the end of Monday.
 */
export function dueSoonBy(now: Date, timeZone: string, calendar: BusinessCalendar = (defaultCalendar ??= createUsFederalCalendar())): Date {
  const nextBusinessDay = addBusinessDays(calendar, localDateOf(now, timeZone), 1);
  return new Date(startOfLocalDay(addDays(nextBusinessDay, 1), timeZone).getTime() - 1);
}
