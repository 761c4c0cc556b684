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
 * A shared SNOMED concept does not make two diagnoses one when what else they state differs:
 * - codes of another system: SNOMED 65363002 (otitis media) coded also H66.91 (right ear) at one
 *   source and H66.92 (left ear) at the other are two ears. Each other code system both records
 *   use (ICD-10-CM, a local system) is a dimension of the cluster state holding the record's
 *   codes there ({@link otherSystemStates}): records coding one system differently are never
 *   merged, not even through a record that does not code that system (which joins either);
 * - stage and severity: a neuroblastoma INRG stage L1 (mild) and one at stage M (severe) are
 *   two claims about the disease, so the stage summaries and the severity are dimensions too
 *   ({@link bodySiteState}, read as any concept's state); merged, the survivor listed both stages beside one severity.
 * The body site is one already (above).
 * @see https://hl7.org/fhir/R4/condition.html
 * @see https://hl7.org/fhir/R4/condition-definitions.html#Condition.clinicalStatus
 * @see https://hl7.org/fhir/R4/condition-definitions.html#Condition.verificationStatus
 * @see https://hl7.org/fhir/R4/condition-definitions.html#Condition.stage
 * @see https://hl7.org/fhir/R4/condition-definitions.html#Condition.severity
 * @packageDocumentation
 */
import type { CodeableConcept, Condition } from 'fhir/r4';
import type { ClusterState } from './cluster';
import { dedupeWith } from './engine';
import { asResource } from './json';
import { bodySiteState, codingsOf, combineKeys, dateKeys, isElement, preferredCodeKeys, requiredStatusCode, SNOMED } from './keys';
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
 * The stage summaries of a Condition (`stage[].summary`, e.g. INRG L1 or M), as one state value;
 * undefined when no stage states a summary (a stage with only an assessment says no stage).
 * @see https://hl7.org/fhir/R4/condition-definitions.html#Condition.stage.summary
 */
function stageState(c: Condition): string | undefined {
  const stages: unknown = c.stage;
  if (!Array.isArray(stages)) return undefined;
  const summaries: CodeableConcept[] = [];
  for (const s of stages as unknown[]) if (isElement(s) && isElement((s as { summary?: unknown }).summary)) summaries.push((s as { summary: CodeableConcept }).summary);
  return bodySiteState(summaries);
}

/**
 * Per code system other than SNOMED CT, the sorted codes a Condition has in it (`system` →
 * `code,code`). A classification such as ICD-10-CM may say what the SNOMED concept leaves open
 * (H66.91 right ear, H66.92 left ear, under one SNOMED otitis media).
 * @see https://hl7.org/fhir/R4/condition-definitions.html#Condition.code
 */
function otherSystemCodes(c: Condition): Map<string, string> {
  const bySystem = new Map<string, Set<string>>();
  for (const coding of codingsOf(c.code)) {
    if (typeof coding.system !== 'string' || coding.system === '' || coding.system === SNOMED || typeof coding.code !== 'string' || coding.code === '') continue;
    const codes = bySystem.get(coding.system) ?? new Set<string>();
    codes.add(coding.code);
    bySystem.set(coding.system, codes);
  }
  return new Map([...bySystem].map(([system, codes]) => [system, [...codes].sort().join(',')]));
}

/**
 * One state dimension per code system other than SNOMED CT used by any of `conditions` (sorted,
 * so positions agree across records): the record's codes there, undefined where it has none.
 * Two records that code one system differently then never share a cluster. Why a state and not
 * a pair test: a record without that system would otherwise join H66.91 and H66.92 into one.
 */
function otherSystemStates(conditions: readonly Condition[]): (string | undefined)[][] {
  const codes = conditions.map(otherSystemCodes);
  const systems = [...new Set(codes.flatMap((m) => [...m.keys()]))].sort();
  return codes.map((m) => systems.map((s) => m.get(s)));
}

/**
 * What a Condition states that a cluster may not contradict: its body site, clinical status,
 * verification status, stage summaries and severity (one dimension each), then its codes in
 * each other code system (`others`, from {@link otherSystemStates}).
 * @see https://hl7.org/fhir/R4/condition-definitions.html#Condition.verificationStatus
 */
function clusterStateOf(c: Condition, others: readonly (string | undefined)[]): ClusterState {
  return [
    bodySiteState(c.bodySite), clinicalStatusOf(c), requiredStatusCode(c.verificationStatus, CONDITION_VERIFICATION, VERIFICATION_CODES),
    stageState(c), bodySiteState(c.severity), ...others,
  ];
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
  approach: 'shared SNOMED CT coding (after mapping) + same onset date + no other body site, clinical or verification status, stage, severity, or code in another system both use',
  blocking(resources) {
    const conditions = resources.map((r) => r.resource as Condition);
    const keys = conditions.map(keysOf);
    const others = otherSystemStates(conditions);
    const states = conditions.map((c, i) => clusterStateOf(c, others[i] ?? []));
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
