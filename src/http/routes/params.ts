import { z } from 'zod';
import { CASE_STATUSES } from '../../cases/lifecycle';

/**
 * A UUID in a path, in its canonical lower-case form (RFC 9562 §4: output in lower case, input in
 * either). PostgreSQL's `uuid` input ignores case, but ids compared as strings do not: an upper-case
 * id that opened the case in SQL was refused by a check in JS (an upload token "for another case").
 * Lower-cased here, where the params are parsed, every handler sees the one form.
 */
export const uuidParam = (error: string) => z.uuid({ error }).transform(canonicalUuid);

/** A UUID in its canonical (lower-case) form: what {@link uuidParam} makes of a path's id, and what code reading the raw path compares. */
export function canonicalUuid(id: string): string {
  return id.toLowerCase();
}

/** `:id` of every `/api/cases/:id/…` route (lower-cased: {@link uuidParam}). */
export const CaseParams = z.object({ id: uuidParam('Case id must be a UUID') });
export type CaseParams = z.infer<typeof CaseParams>;

const FhirId = (label: string) => z.string().regex(/^[A-Za-z0-9\-.]{1,64}$/, { error: `${label} must be a FHIR id` });

/** How to find the child at an endpoint: by id, by identifier, or by name + exact birth date. */
export const PatientSelectorSchema = z.union(
  [
    z.object({ id: FhirId('patient.id') }).strict(),
    z.object({ identifier: z.object({ system: z.string().min(1).max(500), value: z.string().min(1).max(200) }).strict() }).strict(),
    z.object({ match: z.literal(true) }).strict(),
  ],
  { error: 'patient must be {id}, {identifier: {system, value}} or {match: true}' },
);

/** The case manager's choice of the child's Patient at an endpoint (a source or a recipient). */
export const ChoosePatientBody = z.object({ patientId: FhirId('patientId') });

/** The largest version number PostgreSQL's `integer` columns hold (a larger one cannot exist). */
const MAX_VERSION = 2_147_483_647;

/** The range of a {@link wholeNumberParam}, and what is said of a number out of it. */
export interface WholeNumberRange {
  readonly min: number;
  readonly max: number;
  /** Said of a number below `min`; default "<field> must be <min> or more". */
  readonly below?: string;
  /** Said of a number above `max`; default "<field> must be at most <max>". */
  readonly above?: string;
  /** Said of a value that is not decimal digits; default "<field> must be a whole number (decimal digits only)". */
  readonly notDigits?: string;
}

/**
 * A whole number in a query or a path (`?limit=`, `?version=`, a notification's id): decimal digits
 * only, then its range, each error naming the field. Not `z.coerce.number`: `Number()` reads `0x10`
 * as 16, `1e3` as 1000, ` 5 ` as 5 and an empty value as 0, so `?version=0x10` served version 16.
 */
export function wholeNumberParam(field: string, range: WholeNumberRange) {
  return z
    .string({ error: range.notDigits ?? `${field} must be a whole number` })
    .regex(/^\d{1,16}$/, { error: range.notDigits ?? `${field} must be a whole number (decimal digits only)` })
    .transform(Number)
    .pipe(
      z
        .number()
        .min(range.min, { error: range.below ?? `${field} must be ${range.min} or more` })
        .max(range.max, { error: range.above ?? `${field} must be at most ${range.max}` }),
    );
}

/** The `limit` and `offset` of a paged list: at most `maxLimit` a page, `defaultLimit` by default. */
export function pageQuery(maxLimit: number, defaultLimit: number, maxOffset = Number.MAX_SAFE_INTEGER) {
  const limitRange = `limit must be 1 to ${maxLimit}`;
  return {
    limit: wholeNumberParam('limit', { min: 1, max: maxLimit, below: limitRange, above: limitRange }).default(defaultLimit),
    offset: wholeNumberParam('offset', { min: 0, max: maxOffset, below: 'offset must not be negative' }).default(0),
  };
}

/** A version number in a query (`?version=`, `?from=`): a whole number from 1, named in each error. */
export const versionNumber = (field: string) =>
  wholeNumberParam(field, { min: 1, max: MAX_VERSION, notDigits: `${field} must be a version number: a whole number from 1, in decimal digits` });

/** An optional reason, kept on the timeline. */
export const reasonField = z
  .string({ error: 'reason must be text' })
  .trim()
  .min(1, { error: 'reason must not be empty' })
  .max(500, { error: 'reason must be at most 500 characters' })
  .optional();

/** `?version=N`: an older version, the latest when absent. */
export const VersionQuery = z.object({ version: versionNumber('version').optional() });

/** `?status=a,b`: case statuses, comma-separated. */
export const CaseStatusList = z
  .string()
  .optional()
  .transform((value) => (value ? value.split(',').map((s) => s.trim()).filter(Boolean) : undefined))
  .pipe(z.array(z.enum(CASE_STATUSES, { error: `status must be one of: ${CASE_STATUSES.join(', ')}` })).optional());
