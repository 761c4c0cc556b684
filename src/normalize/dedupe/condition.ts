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
 * Clinical status and verification status are modifier elements: two records whose clinical
 * status conflicts (one team `resolved`, the other `active`; any two different codes) or whose
 * verification status conflicts (`provisional` vs `confirmed`) are not merged, so the
 * specialist sees both claims — merged, the survivor's status would stand for both teams and
 * the other's problem would vanish. Each status is a dimension of the cluster state beside the
 * body site (as for allergies, a record without one joins either, but a cluster never holds
 * two different ones).
 * @see https://hl7.org/fhir/R4/condition.html
 * @see https://hl7.org/fhir/R4/condition-definitions.html#Condition.clinicalStatus
 * @see https://hl7.org/fhir/R4/condition-definitions.html#Condition.verificationStatus
 * @packageDocumentation
 */
import type { Condition } from 'fhir/r4';
import type { ClusterState } from './cluster';
import { dedupeWith } from './engine';
import { asResource } from './json';
import { bodySiteState, codingsOf, combineKeys, dateKeys, preferredCodeKeys, requiredStatusCode, SNOMED } from './keys';
import type { DedupeRule } from './rule';

const EXCLUDED_VERIFICATION = new Set(['entered-in-error', 'refuted']);
const ABATED_STATUSES = new Set(['inactive', 'resolved', 'remission']);

/** The code system of Condition.clinicalStatus (required binding), and its codes. */
const CONDITION_CLINICAL = 'http://terminology.hl7.org/CodeSystem/condition-clinical';
const CLINICAL_CODES: ReadonlySet<string> = new Set(['active', 'recurrence', 'relapse', 'inactive', 'remission', 'resolved']);
/** The code system of Condition.verificationStatus (required binding), and its codes. */
const CONDITION_VERIFICATION = 'http://terminology.hl7.org/CodeSystem/condition-ver-status';
const VERIFICATION_CODES: ReadonlySet<string> = new Set(['unconfirmed', 'provisional', 'differential', 'confirmed', 'refuted', 'entered-in-error']);

/**
 * The clinical status code of a Condition; undefined when absent.
 * @see https://hl7.org/fhir/R4/condition-definitions.html#Condition.clinicalStatus
 */
function clinicalStatusOf(c: Condition): string | undefined {
  return requiredStatusCode(c.clinicalStatus, CONDITION_CLINICAL, CLINICAL_CODES);
}

/**
 * What a Condition states that a cluster may not contradict: its body site, clinical status and
 * verification status (one dimension each).
 * @see https://hl7.org/fhir/R4/condition-definitions.html#Condition.verificationStatus
 */
function clusterStateOf(c: Condition): ClusterState {
  return [bodySiteState(c.bodySite), clinicalStatusOf(c), requiredStatusCode(c.verificationStatus, CONDITION_VERIFICATION, VERIFICATION_CODES)];
}

function keysOf(c: Condition): string[] {
  if (c.verificationStatus?.coding?.some((x) => x.code !== undefined && EXCLUDED_VERIFICATION.has(x.code))) return [];
  const onset = dateKeys(c.onsetDateTime ?? c.onsetPeriod?.start);
  return combineKeys(preferredCodeKeys(codingsOf(c.code), SNOMED), onset);
}

/** The rule. */
export const conditionRule: DedupeRule = {
  name: 'condition:code-onset',
  resourceType: 'Condition',
  approach: 'shared SNOMED CT coding (after mapping) + same onset date + no other body site, clinical status or verification status',
  blocking(resources) {
    const keys = resources.map((r) => keysOf(r.resource as Condition));
    const states = resources.map((r) => clusterStateOf(r.resource as Condition));
    return { keys: (i) => keys[i] ?? [], state: (i) => states[i] };
  },
  mayFill(field, survivor) {
    if (!field.startsWith('abatement')) return true;
    const status = clinicalStatusOf(asResource(survivor) as Condition);
    return status !== undefined && ABATED_STATUSES.has(status);
  },
};

/** De-duplicates Conditions only. */
export const dedupeConditions = dedupeWith(conditionRule);
