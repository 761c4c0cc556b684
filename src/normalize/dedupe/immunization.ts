/**
 * Immunization duplicates — rule `immunization:cvx-date`.
 *
 * Approach: the same dose recorded by two sources (one as primary source, the other
 * transcribed from a registry or a parent's record) has the same CVX vaccine code and the
 * same occurrence date. Block on (CVX code, date, done/not-done); without CVX all codings
 * are used. Survivor: the primary-source record when there is one. `entered-in-error`,
 * or a free-text occurrence: never merged. `reportOrigin` is not carried onto a
 * primary-source survivor.
 * @see https://hl7.org/fhir/R4/immunization.html
 * @packageDocumentation
 */
import type { Immunization } from 'fhir/r4';
import { dedupeWith } from './engine';
import { codingsOf, combineKeys, CVX, dateKeys, preferredCodeKeys } from './keys';
import type { DedupeRule } from './rule';

/** The rule. */
export const immunizationRule: DedupeRule = {
  name: 'immunization:cvx-date',
  resourceType: 'Immunization',
  approach: 'same CVX vaccine code + same occurrence date; primary-source record survives',
  blocking(resources) {
    const keys = resources.map((r) => {
      const im = r.resource as Immunization;
      if (im.status === 'entered-in-error') return [];
      return combineKeys(preferredCodeKeys(codingsOf(im.vaccineCode), CVX), dateKeys(im.occurrenceDateTime), [im.status]);
    });
    return { keys: (i) => keys[i] ?? [] };
  },
  preference: (r) => (r.resourceType === 'Immunization' && r.primarySource === true ? 1 : 0),
  mayFill: (field, survivor) => !(field === 'reportOrigin' && survivor.primarySource === true),
};

/** De-duplicates Immunizations only. */
export const dedupeImmunizations = dedupeWith(immunizationRule);
