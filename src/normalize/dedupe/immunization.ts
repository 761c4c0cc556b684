/**
 * Immunization duplicates — rule `immunization:cvx-date`.
 *
 * Approach: the same dose recorded by two sources (one as primary source, the other
 * transcribed from a registry or a parent's record) has the same CVX vaccine code and the
 * same occurrence date. Block on (CVX code, date, done/not-done); without CVX all codings
 * are used. Survivor: the primary-source record when there is one. `entered-in-error`,
 * or a free-text occurrence: never merged. `reportOrigin` is not carried onto a
 * primary-source survivor.
 * Two records that number the dose differently (`protocolApplied.doseNumber[x]`: dose 3 and dose
 * 4 of one series the same day), or of which one is subpotent (`isSubpotent`, a modifier element:
 * absent means potent) and the other not, are two claims: never merged, not even through a record
 * stating no dose number ({@link clusterStateOf}: dose numbers and potency as the cluster state).
 * Merged, the survivor's dose number stood for both and a primary-source record took a registry's
 * `isSubpotent: true` (or lost it): whether the dose counts, and which dose is due next, changed.
 * Likewise two records naming another site, another route or another lot: the left arm IM, lot A and
 * the right arm SC, lot B the same day are two doses (or an error one of the sources must correct),
 * and merged, the survivor's `site` and `route` took both codings (a CodeableConcept's codings are
 * one concept coded several ways: "left arm" and "right arm" at once) and the other lot vanished.
 * A record stating none of them contradicts nothing.
 * @see https://hl7.org/fhir/R4/immunization.html
 * @see https://hl7.org/fhir/R4/immunization-definitions.html#Immunization.isSubpotent
 * @see https://hl7.org/fhir/R4/immunization-definitions.html#Immunization.protocolApplied.doseNumber_x_
 * @see https://hl7.org/fhir/R4/immunization-definitions.html#Immunization.site
 * @see https://hl7.org/fhir/R4/datatypes.html#CodeableConcept
 * @packageDocumentation
 */
import type { Immunization, ImmunizationProtocolApplied } from 'fhir/r4';
import type { ClusterState } from './cluster';
import { dedupeWith } from './engine';
import { bodySiteState, codingsOf, combineKeys, CVX, dateKeys, isElement, preferredCodeKeys } from './keys';
import type { DedupeRule } from './rule';

/**
 * The dose numbers an Immunization states, as one canonical string (sorted, distinct; a
 * `doseNumberString` of digits reads as the number, other text trimmed and lower case);
 * undefined when it states none (absent or malformed `protocolApplied`).
 */
export function doseNumberState(im: Immunization): string | undefined {
  const applied: unknown = im.protocolApplied;
  if (!Array.isArray(applied)) return undefined;
  const doses = new Set<string>();
  for (const p of applied as unknown[]) {
    if (!isElement(p)) continue;
    const { doseNumberPositiveInt: n, doseNumberString: text } = p as ImmunizationProtocolApplied;
    if (typeof n === 'number') doses.add(String(n));
    else if (typeof text === 'string' && text.trim() !== '') {
      const t = text.trim().toLowerCase();
      doses.add(/^\d+$/.test(t) ? String(Number(t)) : `text:${t}`);
    }
  }
  return doses.size === 0 ? undefined : [...doses].sort().join(',');
}

/** The lot number, trimmed and in lower case; undefined when none. */
function lotState(im: Immunization): string | undefined {
  const lot = typeof im.lotNumber === 'string' ? im.lotNumber.trim().toLowerCase() : '';
  return lot === '' ? undefined : lot;
}

/**
 * What an Immunization states that its cluster may not contradict: its dose numbers, its
 * potency, its site, route and lot (the site and route read as any concept's state, {@link bodySiteState}).
 * Potency is always stated (`isSubpotent` absent means potent), so a subpotent dose never joins a potent one.
 */
function clusterStateOf(im: Immunization): ClusterState {
  return [doseNumberState(im), im.isSubpotent === true ? 'subpotent' : 'potent', bodySiteState(im.site), bodySiteState(im.route), lotState(im)];
}

/** The rule. */
export const immunizationRule: DedupeRule = {
  name: 'immunization:cvx-date',
  resourceType: 'Immunization',
  approach: 'same CVX vaccine code + same occurrence date + no other dose number, potency, site, route or lot; primary-source record survives',
  blocking(resources) {
    const keys = resources.map((r) => {
      const im = r.resource as Immunization;
      if (im.status === 'entered-in-error') return [];
      return combineKeys(preferredCodeKeys(codingsOf(im.vaccineCode), CVX), dateKeys(im.occurrenceDateTime), [im.status]);
    });
    const states = resources.map((r) => clusterStateOf(r.resource as Immunization));
    return { keys: (i) => keys[i] ?? [], state: (i) => states[i] };
  },
  preference: (r) => (r.resourceType === 'Immunization' && r.primarySource === true ? 1 : 0),
  mayFill: (field, survivor) => !(field === 'reportOrigin' && survivor.primarySource === true),
};

/** De-duplicates Immunizations only. */
export const dedupeImmunizations = dedupeWith(immunizationRule);
