/**
 * FHIR `dateTime`/`instant` values as a reader of the case record wants them: `2025-10-14 09:55
 * (UTC-06:00)` instead of `2025-10-14T09:55:00-06:00`. The clock time stays the one the source
 * recorded, with its offset (a lab drawn at 09:00 in Denver reads 09:00, not 15:00 UTC); seconds
 * and fractions are left out of the summary (the resource keeps them). A date, a year-month or a
 * year is shown as it is; so is anything that is not a FHIR dateTime.
 * @see https://hl7.org/fhir/R4/datatypes.html#dateTime
 */
const DATE_TIME = /^(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2})(?::\d{2}(?:\.\d+)?)?(Z|[+-]\d{2}:\d{2})?$/;

export function readableDateTime(value: string): string;
export function readableDateTime(value: string | undefined): string | undefined;
export function readableDateTime(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const m = DATE_TIME.exec(value);
  if (!m) return value;
  const [, date, hours, minutes, zone] = m;
  const offset = zone === undefined ? '' : zone === 'Z' || zone === '+00:00' || zone === '-00:00' ? ' (UTC)' : ` (UTC${zone})`;
  return `${date} ${hours}:${minutes}${offset}`;
}
