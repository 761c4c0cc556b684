/**
 * AllergyIntolerance duplicates — rule `allergyintolerance:code`.
 *
 * Approach: an allergy is a lasting state, recorded again by every care team that sees
 * the child; the same substance code (any shared coding: RxNorm, SNOMED CT, …) is the
 * same allergy. Onset dates are not compared (teams often record them differently); the
 * survivor keeps its own, reactions and notes are unioned. `entered-in-error` or
 * `refuted`: never merged.
 * @see https://hl7.org/fhir/R4/allergyintolerance.html
 * @packageDocumentation
 */
import type { AllergyIntolerance } from 'fhir/r4';
import { dedupeWith } from './engine';
import { codeKeys, codingsOf } from './keys';
import type { DedupeRule } from './rule';

const EXCLUDED_VERIFICATION = new Set(['entered-in-error', 'refuted']);

/** The rule. */
export const allergyIntoleranceRule: DedupeRule = {
  name: 'allergyintolerance:code',
  resourceType: 'AllergyIntolerance',
  approach: 'same substance code (any shared coding)',
  blocking(resources) {
    const keys = resources.map((r) => {
      const a = r.resource as AllergyIntolerance;
      if (a.verificationStatus?.coding?.some((c) => c.code !== undefined && EXCLUDED_VERIFICATION.has(c.code))) return [];
      return [...new Set(codeKeys(codingsOf(a.code)))];
    });
    return { keys: (i) => keys[i] ?? [] };
  },
};

/** De-duplicates AllergyIntolerances only. */
export const dedupeAllergyIntolerances = dedupeWith(allergyIntoleranceRule);
