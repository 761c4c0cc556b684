/**
 * An instant in a request body: an ISO 8601 date-time with its offset (a FHIR `instant`), a real
 * calendar date (zod's `iso.datetime` checks the days of each month), from 1900 on: PostgreSQL's
 * `timestamptz` has no year 0, so `0000-01-01T00:00:00Z` passed the format and failed the INSERT
 * with a 500.
 * @see https://hl7.org/fhir/R4/datatypes.html#instant
 */
import { z } from 'zod';

/** Earliest instant taken: nothing this service records happened before 1900. */
const EARLIEST_MS = Date.UTC(1900, 0, 1);

/** The zod schema of an instant field named `field` (in its messages), `example` showing the format. */
export function instantField(field: string, example: string) {
  return z.iso
    .datetime({ offset: true, error: `${field} must be an ISO 8601 instant with its offset, like ${example}` })
    .refine((v) => Date.parse(v) >= EARLIEST_MS, { error: `${field} must be in 1900 or later` });
}
