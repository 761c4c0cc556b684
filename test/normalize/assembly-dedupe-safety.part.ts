/**
 * Safety guarantees of de-duplication (audited defects): a merge never joins two records of
 * one source, allergies keep conflicting statuses apart and the highest criticality,
 * quantities whose decimals JSON dropped keep their precision, and a malformed nested
 * element never stops the assembly.
 */
import type { AllergyIntolerance, DocumentReference, ImagingStudy, MedicationRequest, Observation, ObservationComponent, Quantity } from 'fhir/r4';
import {
  dedupe, dedupeAllergyIntolerances, dedupeDocumentReferences, dedupeImagingStudies, dedupeMedicationRequests, dedupeObservations, runRules,
  type DedupeRule,
} from '../../src/normalize/dedupe/index';
import { sameQuantity } from '../../src/normalize/dedupe/quantity';
import type { NormalizedResource } from '../../src/normalize/types';
import { ORIGINAL_QUANTITY_EXTENSION } from '../../src/normalize/units';
import { nr, permutations } from '../support/dedupe-inputs';

const LOINC = 'http://loinc.org';
const UCUM = 'http://unitsofmeasure.org';
const RXNORM = 'http://www.nlm.nih.gov/research/umls/rxnorm';
const PATIENT = 'urn:uuid:00000000-0000-5000-8000-000000000000';

const q = (value: number, unit: string): Quantity => ({ value, unit, system: UCUM, code: unit });
function obs(code: string, effective: string, value: Quantity | undefined, extra: Partial<Observation> = {}): Observation {
  return { resourceType: 'Observation', status: 'final', code: { coding: [{ system: LOINC, code }] }, subject: { reference: PATIENT }, effectiveDateTime: effective, ...(value ? { valueQuantity: value } : {}), ...extra };
}

const order = (status: MedicationRequest['status'], dosage: MedicationRequest['dosageInstruction']): MedicationRequest => ({
  resourceType: 'MedicationRequest', status, intent: 'order', subject: { reference: PATIENT }, authoredOn: '2026-03-02T09:00:00-07:00',
  medicationCodeableConcept: { coding: [{ system: RXNORM, code: '197361' }] }, ...(dosage ? { dosageInstruction: dosage } : {}),
});
const every6h = [{ text: '5 mg every 6 hours', timing: { repeat: { frequency: 1, period: 6, periodUnit: 'h' as const } }, doseAndRate: [{ doseQuantity: q(5, 'mg') }] }];
const prn = [{ text: '2.5 mg as needed', asNeededBoolean: true, doseAndRate: [{ doseQuantity: q(2.5, 'mg') }] }];

describe('de-duplication is across sources: two records of one source are never merged', () => {

  it('keeps a stopped and an active order of the same drug, same day, at one EHR (the active dosage stays)', () => {
    const m1 = nr('ehr', order('stopped', every6h));
    const m2 = nr('ehr', order('active', prn));
    const r = dedupeMedicationRequests([m1, m2]);
    expect(r.merges).toEqual([]);
    expect(r.survivors.map((s) => (s.resource as MedicationRequest).dosageInstruction?.[0]?.text)).toEqual(['5 mg every 6 hours', '2.5 mg as needed']);
  });

  it('keeps two active orders of one source apart even when everything the rule compares is equal', () => {
    expect(dedupeMedicationRequests([nr('ehr', order('active', every6h)), nr('ehr', order('active', prn))]).merges).toEqual([]);
  });

  it('keeps an active and a stopped order apart across sources too (status is a modifier element)', () => {
    expect(dedupeMedicationRequests([nr('a', order('stopped', every6h)), nr('b', order('active', every6h))]).merges).toEqual([]);
    expect(dedupeMedicationRequests([nr('a', order('active', every6h)), nr('b', order('active', every6h))]).merges).toHaveLength(1);
  });

  it('never joins two records of one source transitively through a record of another source, in any input order', () => {
    const a1 = nr('a', obs('4548-4', '2026-04-14T08:00:00Z', q(8.6, '%')));
    const b = nr('b', obs('4548-4', '2026-04-14T08:00:00Z', q(8.6, '%')));
    const a2 = nr('a', obs('4548-4', '2026-04-14T08:00:00Z', q(8.6, '%'), { note: [{ text: 'repeat' }] }));
    const sourceOf = new Map([a1, b, a2].map((r) => [r.key, r.sourceId]));
    for (const input of permutations([a1, b, a2])) {
      const r = dedupeObservations(input);
      expect(r.merges).toHaveLength(1);
      expect(r.survivors).toHaveLength(2);
      const merge = r.merges[0];
      const sources = [merge?.survivorKey ?? '', ...(merge?.mergedKeys ?? [])].map((k) => sourceOf.get(k));
      expect(sources.sort()).toEqual(['a', 'b']);
    }
  });

  it('does not join the clusters of two rules of one type when that would hold two records of one source', () => {
    const a1 = nr('a', obs('1-1', '2026-01-01T00:00:00Z', q(1, 'mg')));
    const b = nr('b', obs('2-2', '2026-01-01T00:00:00Z', q(2, 'mg')));
    const a2 = nr('a', obs('3-3', '2026-01-01T00:00:00Z', q(3, 'mg')));
    const pairRule = (name: string, members: readonly string[]): DedupeRule => ({
      name, resourceType: 'Observation', approach: 'test',
      blocking: (resources) => ({ keys: (i) => (members.includes(resources[i]?.fullUrl ?? '') ? [name] : []) }),
    });
    const r = runRules([a1, b, a2], [pairRule('x:first', [a1.fullUrl, b.fullUrl]), pairRule('x:second', [b.fullUrl, a2.fullUrl])]);
    expect(r.merges).toHaveLength(1);
    expect(r.resources.map((x) => x.fullUrl)).toContain(a2.fullUrl);
  });

  it('still merges one DICOM study known to two EHRs and to the family uploads (one source per record)', () => {
    const study = (endpoint: string): ImagingStudy => ({
      resourceType: 'ImagingStudy', status: 'available', subject: { reference: PATIENT }, identifier: [{ system: 'urn:dicom:uid', value: 'urn:oid:2.25.7' }],
      endpoint: [{ reference: endpoint }],
    });
    const r = dedupeImagingStudies([nr('src-a', study('urn:uuid:e-a')), nr('family-uploads', study('urn:uuid:e-u')), nr('src-b', study('urn:uuid:e-b'))]);
    expect(r.survivors).toHaveLength(1);
    expect((r.survivors[0]?.resource as ImagingStudy).endpoint?.map((e) => e.reference).sort()).toEqual(['urn:uuid:e-a', 'urn:uuid:e-b', 'urn:uuid:e-u']);
  });
});

describe('medicationrequest:rxnorm-authored keeps orders of another dose or timing apart', () => {
  const dosageTexts = (r: { survivors: NormalizedResource[] }): (string | undefined)[] =>
    r.survivors.map((s) => (s.resource as MedicationRequest).dosageInstruction?.[0]?.text).sort();

  it('does not merge 5 mg every 6 hours at one EHR with 2.5 mg as needed at the other (same drug, day, status and intent)', () => {
    const r = dedupeMedicationRequests([nr('a', order('active', every6h)), nr('b', order('active', prn))]);
    expect(r.merges).toEqual([]);
    expect(dosageTexts(r)).toEqual(['2.5 mg as needed', '5 mg every 6 hours']);
  });

  it('keeps apart the same dose at another frequency, by another route, or as needed', () => {
    const every8h = [{ ...every6h[0], timing: { repeat: { frequency: 1, period: 8, periodUnit: 'h' as const } } }];
    const rectal = [{ ...every6h[0], route: { coding: [{ system: 'http://snomed.info/sct', code: '37161004' }] } }];
    const asNeeded = [{ ...every6h[0], asNeededBoolean: true }];
    for (const other of [every8h, rectal, asNeeded]) {
      expect(dedupeMedicationRequests([nr('a', order('active', every6h)), nr('b', order('active', other))]).merges).toEqual([]);
    }
  });

  it('still merges the same structured dosage worded differently, and text-only dosages equal but for spacing and case', () => {
    const reworded = [{ ...every6h[0], text: 'Take 5 mg by mouth q6h' }];
    expect(dedupeMedicationRequests([nr('a', order('active', every6h)), nr('b', order('active', reworded))]).merges).toHaveLength(1);
    const text = (t: string): MedicationRequest['dosageInstruction'] => [{ text: t }];
    expect(dedupeMedicationRequests([nr('a', order('active', text('Take 5 mg every 6 hours'))), nr('b', order('active', text('take 5 mg  every 6 hours ')))]).merges).toHaveLength(1);
    expect(dedupeMedicationRequests([nr('a', order('active', text('Take 5 mg every 6 hours'))), nr('b', order('active', text('Take 2.5 mg as needed')))]).merges).toEqual([]);
  });

  it('merges an order without dosage into one with dosage, which the survivor then carries', () => {
    const withoutDosage = nr('a', { ...order('active', undefined), note: [{ text: 'for pain' }], reasonCode: [{ text: 'pain' }], requester: { display: 'Dr A' } });
    const r = dedupeMedicationRequests([withoutDosage, nr('b', order('active', every6h))]);
    expect(r.merges).toEqual([expect.objectContaining({ survivor: withoutDosage.fullUrl })]);
    expect(dosageTexts(r)).toEqual(['5 mg every 6 hours']);
  });

  it('never joins two different doses through an order without dosage, in any input order', () => {
    const make = (): NormalizedResource[] => [nr('a', order('active', every6h)), nr('b', order('active', undefined)), nr('c', order('active', prn))];
    for (const input of permutations([0, 1, 2])) {
      const items = make();
      const r = dedupeMedicationRequests(input.map((i) => items[i] as NormalizedResource));
      expect(r.survivors).toHaveLength(2);
      expect(dosageTexts(r)).toEqual(['2.5 mg as needed', '5 mg every 6 hours']);
    }
  });
});

describe('allergyintolerance:code keeps safety information', () => {
  const CLINICAL = 'http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical';
  const peanut = (status: string | undefined, criticality: AllergyIntolerance['criticality'], extra: Partial<AllergyIntolerance> = {}): AllergyIntolerance => ({
    resourceType: 'AllergyIntolerance', patient: { reference: PATIENT }, code: { coding: [{ system: 'http://snomed.info/sct', code: '91935009', display: 'Peanut allergy' }] },
    ...(status ? { clinicalStatus: { coding: [{ system: CLINICAL, code: status }] } } : {}), ...(criticality ? { criticality } : {}), ...extra,
  });

  it('does not merge an allergy one team resolved with the same allergy another team records as active', () => {
    const a = nr('team-a', peanut('resolved', 'low', { note: [{ text: 'outgrown per oral challenge' }] }));
    const b = nr('team-b', peanut('active', 'high'));
    const r = dedupeAllergyIntolerances([a, b]);
    expect(r.merges).toEqual([]);
    expect(r.survivors.map((s) => (s.resource as AllergyIntolerance).criticality).sort()).toEqual(['high', 'low']);
  });

  it('gives the survivor the highest criticality of the cluster (high > low > unable-to-assess)', () => {
    const rich = nr('team-a', peanut('active', 'low', { note: [{ text: 'hives' }], recordedDate: '2025-01-01' }));
    const r = dedupeAllergyIntolerances([rich, nr('team-b', peanut('active', 'high')), nr('team-c', peanut('active', 'unable-to-assess'))]);
    expect(r.merges).toEqual([expect.objectContaining({ survivor: rich.fullUrl })]);
    expect((r.survivors[0]?.resource as AllergyIntolerance).criticality).toBe('high');
    const unassessed = nr('team-a', peanut('active', 'unable-to-assess', { note: [{ text: 'hives' }] }));
    const merged = dedupeAllergyIntolerances([unassessed, nr('team-b', peanut('active', 'low'))]).survivors[0]?.resource as AllergyIntolerance;
    expect(merged.criticality).toBe('low');
  });

  it('never puts conflicting statuses in one cluster through a record without a status, in any input order', () => {
    const noStatus = nr('team-c', peanut(undefined, undefined));
    const active = nr('team-a', peanut('active', 'high'));
    const resolved = nr('team-b', peanut('resolved', 'low'));
    for (const input of permutations([noStatus, active, resolved])) {
      const r = dedupeAllergyIntolerances(input);
      expect(r.survivors).toHaveLength(2);
      const statuses = r.survivors.map((s) => (s.resource as AllergyIntolerance).clinicalStatus?.coding?.[0]?.code).sort();
      expect(statuses).toEqual(['active', 'resolved']);
    }
  });
});

describe('quantities whose decimals JSON dropped', () => {
  /** A potassium result as a source sends it: the value is JSON text (`5.0` parses as 5). */
  const potassium = (valueJson: string): Observation =>
    obs('2823-3', '2026-04-14T08:00:00Z', { ...(JSON.parse(`{"value": ${valueJson}}`) as { value: number }), unit: 'mmol/L', system: UCUM, code: 'mmol/L' });

  it('keeps K+ 5.0 and 5.4 at the same instant apart (5.0 is not ±0.5)', () => {
    expect(potassium('5.0').valueQuantity?.value).toBe(5);
    expect(dedupeObservations([nr('a', potassium('5.0')), nr('b', potassium('5.4'))]).merges).toEqual([]);
    expect(sameQuantity(q(5, 'mmol/L'), q(5.4, 'mmol/L'))).toBe(false);
    expect(sameQuantity(q(5, 'mmol/L'), q(5.06, 'mmol/L'))).toBe(false);
  });

  it('still merges 5 with 5.0, whole numbers with whole numbers, and unit-converted equal values', () => {
    expect(dedupeObservations([nr('a', potassium('5')), nr('b', potassium('5.0'))]).merges).toHaveLength(1);
    expect(sameQuantity(q(140, 'mmol/L'), q(140, 'mmol/L'))).toBe(true);
    expect(sameQuantity(q(0.5, 'g/dL'), q(5, 'g/L'))).toBe(true);
    expect(sameQuantity(q(5.4, 'mmol/L'), q(5400, 'umol/L'))).toBe(true);
    expect(sameQuantity(q(5.4, 'mmol/L'), q(5500, 'umol/L'))).toBe(false);
  });

  it('reads the precision of a value the normalizer converted from its original-quantity extension', () => {
    const converted = (value: number): Quantity => ({ ...q(value, 'mg/dL'), extension: [{ url: ORIGINAL_QUANTITY_EXTENSION, valueQuantity: q(10.1, 'mmol/L') }] });
    expect(sameQuantity(converted(181.962), q(182, 'mg/dL'), ['2345-7'])).toBe(true); // 10.1 mmol/L is ±0.9 mg/dL, not ±0.0005
    expect(sameQuantity(converted(181.962), q(184, 'mg/dL'), ['2345-7'])).toBe(false);
  });
});

describe('malformed nested elements never stop the assembly', () => {
  const bp = (components: unknown[]): Observation =>
    ({ ...obs('85354-9', '2026-01-01T10:00:00Z', undefined), component: components as ObservationComponent[] });
  const systolic: ObservationComponent = { code: { coding: [{ system: LOINC, code: '8480-6' }] }, valueQuantity: q(110, 'mm[Hg]') };
  const diastolic: ObservationComponent = { code: { coding: [{ system: LOINC, code: '8462-4' }] }, valueQuantity: q(70, 'mm[Hg]') };

  it('an Observation component without code does not match (and does not throw)', () => {
    const noCode = { valueQuantity: q(70, 'mm[Hg]') };
    const input = [nr('a', bp([systolic, diastolic])), nr('b', bp([systolic, noCode])), nr('c', bp([systolic, noCode])), nr('d', bp([null, noCode]))];
    expect(() => dedupeObservations(input)).not.toThrow();
    expect(dedupeObservations(input).merges).toEqual([]);
    expect(() => dedupe(input)).not.toThrow();
  });

  it('a DocumentReference content without attachment does not match (and does not throw)', () => {
    const identifier = [{ system: 'http://a/doc', value: 'DOC1' }];
    const noAttachment = [{ format: { system: 'urn:oid:1.3.6.1.4.1.19376.1.2.3', code: 'urn:ihe:pcc:xphr:2007' } }];
    const malformed = nr('a', { resourceType: 'DocumentReference', status: 'current', content: noAttachment, identifier } as unknown as DocumentReference);
    const good = nr<DocumentReference>('b', { resourceType: 'DocumentReference', status: 'current', content: [{ attachment: { contentType: 'text/plain' } }], identifier });
    expect(() => dedupeDocumentReferences([malformed, good])).not.toThrow();
    expect(dedupeDocumentReferences([malformed, good]).merges).toEqual([]);
    expect(() => dedupe([malformed, good])).not.toThrow();
  });
});
