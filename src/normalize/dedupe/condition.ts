/**
 * Condition duplicates — rule `condition:code-onset`.
 *
 * Approach: the same diagnosis recorded by two care teams shares a SNOMED CT coding after
 * mapping (team A codes SNOMED, team B ICD-10-CM; the normalizer appends the SNOMED
 * coding) and the same onset date. Block on (SNOMED code, onset date); without a SNOMED
 * coding all codings are used. The onset date is compared as written and, for a dateTime,
 * also as its UTC date. No onset (date precision), `entered-in-error` or `refuted`: never
 * merged — the same disease with a different onset is another episode (vitamin D
 * deficiency resolved in 2025 and back in 2026 stays two Conditions).
 * Abatement is only filled into a survivor whose clinical status allows it (con-4).
 * Another body site is another fact (a burn of the left ear and one of the right ear, same
 * day): records whose `bodySite`s differ are never merged, not even through a record that
 * names none ({@link bodySiteState} as the cluster state), so a merge never unions two sites.
 * @see https://hl7.org/fhir/R4/condition.html
 * @packageDocumentation
 */
import type { Condition } from 'fhir/r4';
import { dedupeWith } from './engine';
import { isObject, type JsonObject } from './json';
import { bodySiteState, codingsOf, combineKeys, dateKeys, preferredCodeKeys, SNOMED } from './keys';
import type { DedupeRule } from './rule';

const EXCLUDED_VERIFICATION = new Set(['entered-in-error', 'refuted']);
const ABATED_STATUSES = new Set(['inactive', 'resolved', 'remission']);

function keysOf(c: Condition): string[] {
  if (c.verificationStatus?.coding?.some((x) => x.code !== undefined && EXCLUDED_VERIFICATION.has(x.code))) return [];
  const onset = dateKeys(c.onsetDateTime ?? c.onsetPeriod?.start);
  return combineKeys(preferredCodeKeys(codingsOf(c.code), SNOMED), onset);
}

function clinicalStatusCode(survivor: JsonObject): string | undefined {
  const cs = survivor.clinicalStatus;
  if (!isObject(cs) || !Array.isArray(cs.coding)) return undefined;
  const first = cs.coding.find(isObject);
  return first && typeof first.code === 'string' ? first.code : undefined;
}

/** The rule. */
export const conditionRule: DedupeRule = {
  name: 'condition:code-onset',
  resourceType: 'Condition',
  approach: 'shared SNOMED CT coding (after mapping) + same onset date + no other body site',
  blocking(resources) {
    const keys = resources.map((r) => keysOf(r.resource as Condition));
    const sites = resources.map((r) => bodySiteState((r.resource as Condition).bodySite));
    return { keys: (i) => keys[i] ?? [], state: (i) => sites[i] };
  },
  mayFill(field, survivor) {
    if (!field.startsWith('abatement')) return true;
    const status = clinicalStatusCode(survivor);
    return status !== undefined && ABATED_STATUSES.has(status);
  },
};

/** De-duplicates Conditions only. */
export const dedupeConditions = dedupeWith(conditionRule);
