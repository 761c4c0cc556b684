/**
 * Where a Condition is listed and what its line says of its course: every onset[x] and abatement[x]
 * form. A condition with an abatement is past history unless its clinicalStatus says it is active
 * again (then it stays a problem, flagged "abatement recorded": the record contradicts itself and the
 * reader must see both).
 * @see https://hl7.org/fhir/R4/condition-definitions.html#Condition.abatement_x_
 * @see https://hl7.org/fhir/R4/condition.html#6.2.3.3 (clinicalStatus and abatement)
 * @packageDocumentation
 */
import type { Age, Condition, Range } from 'fhir/r4';
import { readableDateTime } from '../readable-date';
import { codesOf, isObject, periodText, quantityText, rangeText } from './concept';

const PAST_STATUSES: ReadonlySet<string> = new Set(['resolved', 'inactive', 'remission']);
const ACTIVE_STATUSES: ReadonlySet<string> = new Set(['active', 'recurrence', 'relapse']);
const EXCLUDED_VERIFICATION: ReadonlySet<string> = new Set(['entered-in-error', 'refuted']);

/** Whether the condition records an abatement in any R4 form (dateTime, Age, Period, Range, string). */
function hasAbatement(c: Condition): boolean {
  return c.abatementDateTime !== undefined || isObject(c.abatementAge) || isObject(c.abatementPeriod) || isObject(c.abatementRange)
    || (typeof c.abatementString === 'string' && c.abatementString !== '');
}

/** Whether a clinicalStatus's codes say active (active, recurrence, relapse). */
const saysActive = (statusCodes: readonly string[]): boolean => statusCodes.some((x) => ACTIVE_STATUSES.has(x));

/** Whether a verification status is excluded from the record's lists (entered in error, refuted). */
export const isExcludedVerification = (codes: readonly string[]): boolean => codes.some((x) => EXCLUDED_VERIFICATION.has(x));

/** Its section: none when entered in error or refuted; past illness when resolved or abated and not active again. */
export function conditionSection(c: Condition): 'problems' | 'pastIllness' | undefined {
  if (isExcludedVerification(codesOf(c.verificationStatus))) return undefined;
  const status = codesOf(c.clinicalStatus);
  if (status.some((x) => PAST_STATUSES.has(x))) return 'pastIllness';
  return hasAbatement(c) && !saysActive(status) ? 'pastIllness' : 'problems';
}

/** An age or age range: "at age 18 mo", "at age 2–4 a". */
function ageText(age: Age | undefined, range: Range | undefined): string | undefined {
  const a = quantityText(age) ?? rangeText(range);
  return a === undefined ? undefined : `at age ${a}`;
}

/** "onset 2024-10-15", "onset from 2024-10-15", "onset at age 18 mo", "onset age 2" (as the source wrote it). */
export function onsetText(c: Condition): string | undefined {
  const when = readableDateTime(c.onsetDateTime) ?? periodText(c.onsetPeriod) ?? ageText(c.onsetAge, c.onsetRange)
    ?? (typeof c.onsetString === 'string' && c.onsetString !== '' ? c.onsetString : undefined);
  return when === undefined ? undefined : `onset ${when}`;
}

/** "resolved 2025-04-15", "resolved at age 3 a", "resolved age 3" (as the source wrote it). */
export function abatementText(c: Condition): string | undefined {
  const when = readableDateTime(c.abatementDateTime) ?? periodText(c.abatementPeriod) ?? ageText(c.abatementAge, c.abatementRange)
    ?? (typeof c.abatementString === 'string' && c.abatementString !== '' ? c.abatementString : undefined);
  return when === undefined ? undefined : `resolved ${when}`;
}

/** The flag of a condition said active that records an abatement. */
export function contradictionText(c: Condition): string | undefined {
  return hasAbatement(c) && saysActive(codesOf(c.clinicalStatus)) ? 'abatement recorded' : undefined;
}
