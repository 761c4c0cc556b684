/**
 * AllergyIntolerance duplicates — rule `allergyintolerance:code`.
 *
 * Approach: an allergy is a lasting state, recorded again by every care team that sees
 * the child; the same substance code (any shared coding: RxNorm, SNOMED CT, …) is the
 * same allergy. Onset dates are not compared (teams often record them differently); the
 * survivor keeps its own, reactions and notes are unioned. `entered-in-error` or
 * `refuted`: never merged. Safety first:
 * - two records whose clinical status conflicts (both present, different: one team says
 *   `active`, the other `resolved`) are not merged, so the specialist sees both claims
 *   (a cluster never holds two different statuses, even through a record without one);
 * - likewise two records whose verification status conflicts (a modifier element too: one team
 *   `unconfirmed`, the other `confirmed`): merged into the `unconfirmed` survivor, a confirmed
 *   high-criticality penicillin allergy would read as a suspicion. Clinical and verification
 *   status are two dimensions of the cluster state (as for Conditions);
 * - likewise two records whose `type` conflicts (one team judged the reaction an `intolerance`,
 *   the other an immune `allergy`): a third dimension. Merged, the survivor's type would stand
 *   for the other team's reactions (anaphylaxis listed under an intolerance reads as a
 *   non-immune reaction one may re-challenge); taking `allergy` instead would relabel the
 *   other team's judgement. Kept apart, the specialist sees both; a record without a type joins either;
 * - the survivor carries the highest criticality of the cluster (high > low >
 *   unable-to-assess): a team that judged the reaction potentially life-threatening is
 *   never hidden behind a `low`.
 * @see https://hl7.org/fhir/R4/allergyintolerance.html
 * @see https://hl7.org/fhir/R4/valueset-allergyintolerance-clinical.html
 * @see https://hl7.org/fhir/R4/valueset-allergy-intolerance-criticality.html
 * @packageDocumentation
 */
import type { AllergyIntolerance } from 'fhir/r4';
import type { ClusterState } from './cluster';
import { dedupeWith } from './engine';
import type { JsonObject } from './json';
import { codeKeys, codingsOf, requiredStatusCode } from './keys';
import type { DedupeRule } from './rule';

const EXCLUDED_VERIFICATION = new Set(['entered-in-error', 'refuted']);

/** The code system of AllergyIntolerance.clinicalStatus (required binding), and its codes. */
const ALLERGY_CLINICAL = 'http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical';
const CLINICAL_CODES: ReadonlySet<string> = new Set(['active', 'inactive', 'resolved']);

/**
 * The clinical status code (active | inactive | resolved) of an allergy: the coding of the
 * required code system, else a system-less coding with one of its codes; undefined when absent.
 * @see https://hl7.org/fhir/R4/allergyintolerance-definitions.html#AllergyIntolerance.clinicalStatus
 */
function allergyClinicalStatus(a: AllergyIntolerance): string | undefined {
  return requiredStatusCode(a.clinicalStatus, ALLERGY_CLINICAL, CLINICAL_CODES);
}

/** The code system of AllergyIntolerance.verificationStatus (required binding), and its codes. */
const ALLERGY_VERIFICATION = 'http://terminology.hl7.org/CodeSystem/allergyintolerance-verification';
const VERIFICATION_CODES: ReadonlySet<string> = new Set(['unconfirmed', 'confirmed', 'refuted', 'entered-in-error']);

/**
 * What an allergy states that a cluster may not contradict: its clinical status, its
 * verification status and its type, allergy or intolerance (one dimension each; a record may
 * leave any unstated).
 * @see https://hl7.org/fhir/R4/allergyintolerance-definitions.html#AllergyIntolerance.verificationStatus
 * @see https://hl7.org/fhir/R4/allergyintolerance-definitions.html#AllergyIntolerance.type
 */
function clusterStateOf(a: AllergyIntolerance): ClusterState {
  const type = typeof a.type === 'string' && a.type.length > 0 ? a.type : undefined;
  return [allergyClinicalStatus(a), requiredStatusCode(a.verificationStatus, ALLERGY_VERIFICATION, VERIFICATION_CODES), type];
}

/** Rank of a criticality: higher is more severe; unknown codes rank lowest. */
const CRITICALITY_RANK: Readonly<Record<string, number>> = { 'unable-to-assess': 1, low: 2, high: 3 };

function criticalityRank(value: unknown): number {
  return typeof value === 'string' ? CRITICALITY_RANK[value] ?? 0 : 0;
}

/** Keeps on the survivor the highest criticality of the survivor and `duplicate`. */
function keepHighestCriticality(survivor: JsonObject, duplicate: JsonObject): void {
  const d = duplicate.criticality;
  if (typeof d === 'string' && criticalityRank(d) > criticalityRank(survivor.criticality)) survivor.criticality = d;
}

/** The rule. */
export const allergyIntoleranceRule: DedupeRule = {
  name: 'allergyintolerance:code',
  resourceType: 'AllergyIntolerance',
  approach: 'same substance code (any shared coding), no conflicting clinical or verification status or type (allergy/intolerance); highest criticality kept',
  blocking(resources) {
    const allergies = resources.map((r) => r.resource as AllergyIntolerance);
    const keys = allergies.map((a) => {
      if (a.verificationStatus?.coding?.some((c) => c.code !== undefined && EXCLUDED_VERIFICATION.has(c.code))) return [];
      return [...new Set(codeKeys(codingsOf(a.code)))];
    });
    const states = allergies.map(clusterStateOf);
    return { keys: (i) => keys[i] ?? [], state: (i) => states[i] };
  },
  unionExtra: keepHighestCriticality,
};

/** De-duplicates AllergyIntolerances only. */
export const dedupeAllergyIntolerances = dedupeWith(allergyIntoleranceRule);
