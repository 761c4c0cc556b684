/**
 * De-duplication keeps apart what a clinical-safety review found merged silently:
 * - an Observation's status is a modifier element: a `preliminary` and a `final` result, or a
 *   `final` one flagged H and the `corrected` one flagged HH, stay two records (never a survivor
 *   saying `preliminary` for a final result, never a lost correction or critical flag);
 * - two results of the same code, instant and value on another specimen (blood and urine cultures)
 *   or by another method (axillary and rectal temperature) are two results;
 * - two Immunizations numbering the dose differently, or one subpotent and the other not, are two claims.
 * Switching the rules off still leaves everything unmerged.
 */
import type { CodeableConcept, Immunization, Observation, Quantity, Reference, Specimen } from 'fhir/r4';
import { dedupe, dedupeImmunizations, dedupeObservations } from '../../src/normalize/dedupe/index';
import { doseNumberState } from '../../src/normalize/dedupe/immunization';
import { specimenState } from '../../src/normalize/dedupe/observation';
import type { NormalizedResource } from '../../src/normalize/types';
import { nr, permutations } from '../support/dedupe-inputs';

const LOINC = 'http://loinc.org';
const UCUM = 'http://unitsofmeasure.org';
const SNOMED = 'http://snomed.info/sct';
const CVX = 'http://hl7.org/fhir/sid/cvx';
const PATIENT = 'urn:uuid:00000000-0000-5000-8000-000000000000';
const INTERPRETATION = 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation';

const q = (value: number, unit: string): Quantity => ({ value, unit, system: UCUM, code: unit });
const flag = (code: string): CodeableConcept => ({ coding: [{ system: INTERPRETATION, code }] });
const observations = (r: { survivors: readonly NormalizedResource[] }): Observation[] =>
  r.survivors.flatMap((s) => (s.resource.resourceType === 'Observation' ? [s.resource] : []));

function obs(code: string, value: Partial<Observation>, extra: Partial<Observation> = {}): Observation {
  return {
    resourceType: 'Observation', status: 'final', code: { coding: [{ system: LOINC, code }] }, subject: { reference: PATIENT },
    effectiveDateTime: '2026-05-02T07:40:00-06:00', ...value, ...extra,
  };
}

describe('observation:code-time-value keeps results of different status apart', () => {
  const potassium = (value: number, extra: Partial<Observation>): Observation => obs('2823-3', { valueQuantity: q(value, 'mmol/L') }, extra);

  it('does not let a more complete preliminary K 6.1 stand for the final one', () => {
    const preliminary = nr('team-a', potassium(6.1, {
      status: 'preliminary', issued: '2026-05-02T08:00:00Z', note: [{ text: 'called to ward' }], performer: [{ display: 'Big Sky lab' }],
      interpretation: [flag('H')], referenceRange: [{ low: q(3.5, 'mmol/L'), high: q(5.1, 'mmol/L') }],
    }));
    const final = nr('team-b', potassium(6.1, {}));
    for (const input of permutations([preliminary, final])) {
      const r = dedupeObservations(input);
      expect(r.merges).toEqual([]);
      expect(observations(r).map((o) => o.status).sort()).toEqual(['final', 'preliminary']);
      expect(observations(r).find((o) => o.status === 'final')).toEqual(final.resource);
    }
  });

  it('keeps the corrected K 6.6 with its critical flag HH beside the final 6.6 flagged H', () => {
    const final = nr('team-a', potassium(6.6, { interpretation: [flag('H')], note: [{ text: 'reported by phone' }], issued: '2026-05-02T08:00:00Z' }));
    const corrected = nr('team-b', potassium(6.6, { status: 'corrected', interpretation: [flag('HH')] }));
    const r = dedupeObservations([final, corrected]);
    expect(r.merges).toEqual([]);
    const byStatus = new Map(observations(r).map((o) => [o.status, o.interpretation]));
    expect(byStatus.get('corrected')).toEqual([flag('HH')]);
    expect(byStatus.get('final')).toEqual([flag('H')]);
  });

  it('still merges two final results, and never joins two statuses through a record without one', () => {
    expect(dedupeObservations([nr('team-a', potassium(6.1, {})), nr('team-b', potassium(6.1, {}))]).merges).toHaveLength(1);
    const { status: _omit, ...noStatus } = potassium(6.1, {});
    for (const input of permutations([nr('team-c', noStatus as Observation), nr('team-a', potassium(6.1, { status: 'preliminary' })), nr('team-b', potassium(6.1, {}))])) {
      const r = dedupeObservations(input);
      expect(r.survivors).toHaveLength(2);
      expect(observations(r).map((o) => o.status).sort()).toEqual(['final', 'preliminary']);
    }
  });
});

describe('observation:code-time-value keeps results of another specimen or method apart', () => {
  const ECOLI: Partial<Observation> = { valueCodeableConcept: { coding: [{ system: SNOMED, code: '112283007', display: 'Escherichia coli' }] } };
  const BLOOD: CodeableConcept = { coding: [{ system: SNOMED, code: '119297000', display: 'Blood specimen' }] };
  const URINE: CodeableConcept = { coding: [{ system: SNOMED, code: '122575003', display: 'Urine specimen' }] };
  const culture = (specimen: Reference | undefined, extra: Partial<Observation> = {}): Observation =>
    obs('11475-1', ECOLI, { ...(specimen ? { specimen } : {}), ...extra });
  const specimen = (sourceId: string, type: CodeableConcept): NormalizedResource & { resource: Specimen } =>
    nr(sourceId, { resourceType: 'Specimen', subject: { reference: PATIENT }, type });
  const specimenTypes = (r: { survivors: readonly NormalizedResource[] }, bundle: readonly NormalizedResource[]): string[] =>
    observations(r).map((o) => {
      const ref = o.specimen?.reference ?? '';
      const target = ref.startsWith('#')
        ? o.contained?.find((c) => c.id === ref.slice(1))
        : bundle.find((s) => s.fullUrl === ref)?.resource;
      return (target as Specimen | undefined)?.type?.coding?.[0]?.display ?? '?';
    }).sort();

  it('does not merge an E. coli blood culture (bundle Specimen) and an E. coli urine culture (contained Specimen) at the same instant', () => {
    const blood = specimen('team-a', BLOOD);
    const inBlood = nr('team-a', culture({ reference: blood.fullUrl }, { note: [{ text: 'positive at 14 h' }] }));
    const inUrine = nr('team-b', culture({ reference: '#sp' }, { contained: [{ resourceType: 'Specimen', id: 'sp', type: URINE }] }));
    const input = [blood, inBlood, inUrine];
    const r = dedupeObservations(input);
    expect(r.merges).toEqual([]);
    expect(specimenTypes(r, input)).toEqual(['Blood specimen', 'Urine specimen']);
  });

  it('merges two cultures of one specimen type (bundle and contained Specimen), and one naming no specimen, but never joins blood and urine through it', () => {
    const bloodA = specimen('team-a', BLOOD);
    const sameType = [bloodA, nr('team-a', culture({ reference: bloodA.fullUrl })), nr('team-b', culture({ reference: '#s1' }, { contained: [{ resourceType: 'Specimen', id: 's1', type: BLOOD }] }))];
    expect(dedupeObservations(sameType).merges).toHaveLength(1);
    const bloodB = specimen('team-b', BLOOD);
    const urineC = specimen('team-c', URINE);
    const none = nr('team-a', culture(undefined));
    for (const order of permutations([none, nr('team-b', culture({ reference: bloodB.fullUrl })), nr('team-c', culture({ reference: urineC.fullUrl }))])) {
      const input = [bloodB, urineC, ...order];
      const r = dedupeObservations(input);
      expect(r.merges).toHaveLength(1);
      expect(specimenTypes(r, input)).toEqual(['Blood specimen', 'Urine specimen']);
    }
  });

  it('reads a specimen by its type, else the reference display, else its target; two untyped contained specimens never match', () => {
    const specimens = new Map<string, Specimen>([['urn:uuid:sp-1', { resourceType: 'Specimen', type: { text: 'Urine' } }]]);
    const state = (specimenRef: Reference | undefined, extra: Partial<Observation> = {}, self = 'urn:uuid:obs'): string | undefined =>
      specimenState(culture(specimenRef, extra), self, specimens);
    expect(state({ reference: 'urn:uuid:sp-1' })).toBe(state({ display: ' urine ' }));
    expect(state({ display: 'Blood' })).not.toBe(state({ display: 'Urine' }));
    expect(state({ reference: 'urn:uuid:sp-2' })).toBe('ref:urn:uuid:sp-2');
    expect(state({ reference: '#sp' }, { contained: [{ resourceType: 'Specimen', id: 'sp' }] }, 'urn:uuid:a'))
      .not.toBe(state({ reference: '#sp' }, { contained: [{ resourceType: 'Specimen', id: 'sp' }] }, 'urn:uuid:b'));
    expect([state(undefined), state('x' as unknown as Reference), state({})]).toEqual([undefined, undefined, undefined]);
    const untyped = (sourceId: string): NormalizedResource =>
      nr(sourceId, culture({ reference: '#sp' }, { contained: [{ resourceType: 'Specimen', id: 'sp', subject: { reference: PATIENT } }] }));
    expect(dedupeObservations([untyped('team-a'), untyped('team-b')]).merges).toEqual([]);
  });

  it('keeps 38.1 °C axillary and 38.1 °C rectal apart, and merges two axillary readings', () => {
    const temp = (method: string): Observation => obs('8310-5', { valueQuantity: q(38.1, 'Cel') }, { method: { text: method } });
    const r = dedupeObservations([nr('team-a', temp('Axillary')), nr('team-b', temp('Rectal'))]);
    expect(r.merges).toEqual([]);
    expect(observations(r).map((o) => o.method?.text).sort()).toEqual(['Axillary', 'Rectal']);
    expect(dedupeObservations([nr('team-a', temp('Axillary')), nr('team-b', temp(' axillary'))]).merges).toHaveLength(1);
  });
});

describe('immunization:cvx-date keeps other dose numbers and subpotent doses apart', () => {
  const dtap = (primarySource: boolean, extra: Partial<Immunization>): Immunization => ({
    resourceType: 'Immunization', status: 'completed', patient: { reference: PATIENT }, primarySource, occurrenceDateTime: '2026-03-01',
    vaccineCode: { coding: [{ system: CVX, code: '20', display: 'DTaP' }] }, ...extra,
  });
  const dose = (n: number): Partial<Immunization> => ({ protocolApplied: [{ doseNumberPositiveInt: n }] });
  const immunizations = (r: { survivors: readonly NormalizedResource[] }): Immunization[] =>
    r.survivors.flatMap((s) => (s.resource.resourceType === 'Immunization' ? [s.resource] : []));

  it('does not merge a primary-source dose 3 with a registry dose 4 recorded as subpotent', () => {
    const primary = nr('team-a', dtap(true, dose(3)));
    const registry = nr('registry', dtap(false, { ...dose(4), isSubpotent: true, reportOrigin: { text: 'state registry' } }));
    const r = dedupeImmunizations([registry, primary]);
    expect(r.merges).toEqual([]);
    const kept = immunizations(r).find((i) => i.primarySource === true);
    expect(kept).toEqual(primary.resource);
    expect(kept?.isSubpotent).toBeUndefined();
  });

  it('keeps apart doses differing only in number, or only in potency', () => {
    expect(dedupeImmunizations([nr('team-a', dtap(true, dose(3))), nr('team-b', dtap(false, dose(4)))]).merges).toEqual([]);
    const r = dedupeImmunizations([nr('team-a', dtap(true, dose(3))), nr('team-b', dtap(false, { ...dose(3), isSubpotent: true }))]);
    expect(r.merges).toEqual([]);
    expect(immunizations(r).map((i) => i.isSubpotent === true).sort()).toEqual([false, true]);
  });

  it('still merges the same dose (number as positiveInt or string, isSubpotent false or absent), and never joins two dose numbers through a record without one', () => {
    const same = dedupeImmunizations([nr('team-a', dtap(true, dose(3))), nr('team-b', dtap(false, { protocolApplied: [{ doseNumberString: ' 3' }], isSubpotent: false }))]);
    expect(same.merges).toHaveLength(1);
    expect(immunizations(same)[0]?.protocolApplied).toEqual([{ doseNumberPositiveInt: 3 }]);
    for (const input of permutations([nr('team-c', dtap(false, {})), nr('team-a', dtap(true, dose(3))), nr('team-b', dtap(false, dose(4)))])) {
      const r = dedupeImmunizations(input);
      expect(r.merges).toHaveLength(1);
      expect(immunizations(r).map((i) => i.protocolApplied?.[0]?.doseNumberPositiveInt).sort()).toEqual([3, 4]);
    }
  });

  it('keeps apart doses given at another site, by another route or from another lot, and merges one stating none of them', () => {
    const LA = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActSite', code: 'LA', display: 'left arm' }] };
    const RA = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActSite', code: 'RA', display: 'right arm' }] };
    const IM = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration', code: 'IM', display: 'Injection, intramuscular' }] };
    const SC = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration', code: 'SQ', display: 'Injection, subcutaneous' }] };
    const left = dtap(true, { site: LA, route: IM, lotNumber: 'A1234' });
    for (const other of [{ site: RA, route: IM, lotNumber: 'A1234' }, { site: LA, route: SC, lotNumber: 'A1234' }, { site: LA, route: IM, lotNumber: 'B9876' }]) {
      const r = dedupeImmunizations([nr('team-a', left), nr('team-b', dtap(false, other))]);
      expect(r.merges).toEqual([]);
      // Neither record's site or route is a mix of both (one concept, coded one way).
      for (const im of immunizations(r)) expect(im.site?.coding).toHaveLength(1);
    }
    // The same site, route and lot (the lot's case and spaces aside), or none stated: the same dose.
    expect(dedupeImmunizations([nr('team-a', left), nr('team-b', dtap(false, { site: LA, route: IM, lotNumber: ' a1234' }))]).merges).toHaveLength(1);
    const filled = dedupeImmunizations([nr('team-a', dtap(true, {})), nr('team-b', dtap(false, { site: LA, lotNumber: 'A1234' }))]);
    expect(filled.merges).toHaveLength(1);
    expect(immunizations(filled)[0]).toMatchObject({ primarySource: true, site: LA, lotNumber: 'A1234' });
  });

  it('reads dose numbers defensively', () => {
    expect(doseNumberState(dtap(true, { protocolApplied: [{ doseNumberPositiveInt: 2 }, { doseNumberString: 'Booster ' }, { doseNumberPositiveInt: 2 }] }))).toBe('2,text:booster');
    expect([doseNumberState(dtap(true, {})), doseNumberState(dtap(true, { protocolApplied: 'x' as unknown as Immunization['protocolApplied'] })), doseNumberState(dtap(true, { protocolApplied: [null as unknown as { doseNumberPositiveInt: number }] }))])
      .toEqual([undefined, undefined, undefined]);
  });
});

describe('switching the rules off', () => {
  it('leaves every record unmerged; with the rules on, only the true duplicates merge', () => {
    const k = (sourceId: string, status: Observation['status']): NormalizedResource => nr(sourceId, obs('2823-3', { valueQuantity: q(4.1, 'mmol/L') }, { status }));
    const shot = (sourceId: string, n: number): NormalizedResource => nr(sourceId, {
      resourceType: 'Immunization', status: 'completed', patient: { reference: PATIENT }, occurrenceDateTime: '2026-03-01',
      vaccineCode: { coding: [{ system: CVX, code: '20' }] }, protocolApplied: [{ doseNumberPositiveInt: n }],
    });
    const input = [k('team-a', 'final'), k('team-b', 'final'), k('team-c', 'preliminary'), shot('team-a', 1), shot('team-b', 1), shot('team-c', 2)];
    expect(dedupe(input).merges.map((m) => m.rule).sort()).toEqual(['immunization:cvx-date', 'observation:code-time-value']);
    const off = dedupe(input, { disabledRules: ['observation:code-time-value', 'immunization:cvx-date'] });
    expect(off.merges).toEqual([]);
    expect(off.resources).toHaveLength(input.length);
  });
});
