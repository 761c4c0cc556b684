/**
 * De-duplication keeps apart, or does not blend, what two sources state differently (audited defects):
 * - whole numbers in different units compare at the finer precision of the two, never the coarser
 *   one widened by a unit conversion (glucose 100 mg/dL is not team B's 6.0 mmol/L = 108 mg/dL);
 * - an Observation merge keeps the survivor's reading (reference range and interpretation flags) and
 *   never takes one from a result reported in another unit, nor puts two labs' flags side by side;
 * - a Procedure's status and an allergy's verification status are modifier elements: a `stopped`
 *   and a `completed` procedure, an `unconfirmed` and a `confirmed` allergy, stay two records;
 * - references to a merged-away resource from `DocumentManifest.content` (Reference(Any)) follow
 *   the merge like any other reference.
 */
import type { AllergyIntolerance, CodeableConcept, DocumentManifest, DocumentReference, Observation, Procedure, Quantity } from 'fhir/r4';
import {
  dedupe, dedupeAllergyIntolerances, dedupeDocumentReferences, dedupeObservations, dedupeProcedures,
} from '../../src/normalize/dedupe/index';
import { sameQuantity } from '../../src/normalize/dedupe/quantity';
import type { NormalizedResource } from '../../src/normalize/types';
import { ORIGINAL_QUANTITY_EXTENSION } from '../../src/normalize/units';
import { nr, permutations } from '../support/dedupe-inputs';

const LOINC = 'http://loinc.org';
const UCUM = 'http://unitsofmeasure.org';
const SNOMED = 'http://snomed.info/sct';
const PATIENT = 'urn:uuid:00000000-0000-5000-8000-000000000000';
const INTERPRETATION = 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation';

const q = (value: number, unit: string): Quantity => ({ value, unit, system: UCUM, code: unit });
/** A value as the source sent it in JSON (`6.0` parses as 6). */
const qJson = (valueJson: string, unit: string): Quantity => ({ ...(JSON.parse(`{"value": ${valueJson}}`) as { value: number }), unit, system: UCUM, code: unit });
/** A value the normalizer converted from `original` (the original-quantity extension). */
const converted = (value: number, unit: string, original: Quantity): Quantity => ({ ...q(value, unit), extension: [{ url: ORIGINAL_QUANTITY_EXTENSION, valueQuantity: original }] });
const flag = (code: string): CodeableConcept => ({ coding: [{ system: INTERPRETATION, code }] });

function obs(codes: readonly string[], effective: string, value: Quantity, extra: Partial<Observation> = {}): Observation {
  return {
    resourceType: 'Observation', status: 'final', code: { coding: codes.map((code) => ({ system: LOINC, code })) }, subject: { reference: PATIENT },
    effectiveDateTime: effective, valueQuantity: value, ...extra,
  };
}

describe('whole numbers in different units compare at the finer precision of the two', () => {
  const GLUCOSE = ['2345-7', '14749-6'];
  const CREATININE = ['2160-0', '14682-9'];

  it('does not take glucose 100 mg/dL for 6.0 mmol/L (108 mg/dL), converted by the normalizer or not', () => {
    const six = qJson('6.0', 'mmol/L');
    expect(six.value).toBe(6);
    expect(sameQuantity(q(100, 'mg/dL'), six, GLUCOSE)).toBe(false);
    expect(sameQuantity(six, q(100, 'mg/dL'), GLUCOSE)).toBe(false);
    const sixAsMass = converted(108.096, 'mg/dL', six);
    expect(sameQuantity(q(100, 'mg/dL'), sixAsMass, GLUCOSE)).toBe(false);
    expect(sameQuantity(sixAsMass, q(100, 'mg/dL'), GLUCOSE)).toBe(false);
    const at = '2026-04-14T08:00:00Z';
    const a = nr('team-a', obs(['2345-7'], at, q(100, 'mg/dL')));
    const b = nr('team-b', obs(['14749-6', '2345-7'], at, sixAsMass));
    const r = dedupeObservations([a, b]);
    expect(r.merges).toEqual([]);
    expect(r.survivors.map((s) => (s.resource as Observation).valueQuantity?.value).sort()).toEqual([100, 108.096]);
  });

  it('does not take creatinine 1 mg/dL for 53 µmol/L (0.6 mg/dL) nor for 120 µmol/L (1.36 mg/dL)', () => {
    expect(sameQuantity(q(1, 'mg/dL'), q(53, 'umol/L'), CREATININE)).toBe(false);
    expect(sameQuantity(q(53, 'umol/L'), q(1, 'mg/dL'), CREATININE)).toBe(false);
    expect(sameQuantity(q(1, 'mg/dL'), q(120, 'umol/L'), CREATININE)).toBe(false);
    expect(sameQuantity(q(120, 'umol/L'), q(1, 'mg/dL'), CREATININE)).toBe(false);
  });

  it('still matches whole numbers that agree at the finer precision, and equal whole numbers in one unit', () => {
    expect(sameQuantity(qJson('6.0', 'mmol/L'), q(108, 'mg/dL'), GLUCOSE)).toBe(true); // 6 mmol/L = 108.1 mg/dL
    expect(sameQuantity(converted(108.096, 'mg/dL', qJson('6.0', 'mmol/L')), q(108, 'mg/dL'), GLUCOSE)).toBe(true);
    expect(sameQuantity(q(1, 'mg/dL'), q(88, 'umol/L'), CREATININE)).toBe(true); // 88 µmol/L = 0.995 mg/dL
    expect(sameQuantity(q(140, 'mmol/L'), q(140, 'mmol/L'))).toBe(true);
    expect(sameQuantity(q(5, 'g/L'), q(5000, 'mg/L'))).toBe(true);
    expect(sameQuantity(q(5, 'mmol/L'), q(6, 'mmol/L'))).toBe(false);
  });
});

describe('an Observation merge keeps the survivor\'s reading of its own value', () => {
  const at = '2026-04-14T08:00:00Z';
  /** Creatinine as a lab in mg/dL reports it: flag N, no range; richer (survivor). */
  const RICH: Partial<Observation> = {
    note: [{ text: 'drawn before dialysis' }, { text: 'hemolysed: repeat advised' }], issued: '2026-04-14T10:00:00Z', method: { text: 'Jaffe' },
    performer: [{ display: 'Big Sky lab' }, { display: 'Dr. Rivera' }], specimen: { display: 'serum' },
  };
  /** Creatinine as a lab in mg/dL reports it: flag N, no range; richer (survivor). */
  const inMass = (): Observation => obs(['2160-0'], at, q(0.6, 'mg/dL'), { interpretation: [flag('N')], ...RICH });
  /** The same draw as the other lab reports it, in µmol/L (its code also carries the mass LOINC after mapping). */
  const molar = (): Observation => obs(['14682-9', '2160-0'], at, q(53, 'umol/L'), {
    interpretation: [flag('H')], referenceRange: [{ low: q(20, 'umol/L'), high: q(45, 'umol/L') }],
  });

  it('does not take the reference range or the flag of a duplicate reported in another unit', () => {
    const survivor = nr('team-a', inMass());
    const r = dedupeObservations([survivor, nr('team-b', molar())]);
    expect(r.merges).toEqual([expect.objectContaining({ survivor: survivor.fullUrl })]);
    const merged = r.survivors[0]?.resource as Observation;
    expect(merged.valueQuantity).toEqual(q(0.6, 'mg/dL'));
    expect(merged.referenceRange).toBeUndefined();
    expect(merged.interpretation).toEqual([flag('N')]);
  });

  it('never puts two labs\' flags side by side, even in one unit', () => {
    const survivor = nr('team-a', inMass());
    const other = nr('team-b', obs(['2160-0'], at, q(0.6, 'mg/dL'), { interpretation: [flag('H')], referenceRange: [{ low: q(0.2, 'mg/dL'), high: q(0.5, 'mg/dL') }] }));
    const merged = dedupeObservations([survivor, other]).survivors[0]?.resource as Observation;
    expect(merged.interpretation).toEqual([flag('N')]);
    // The survivor's flag was read against a range it does not state; another lab's range would contradict it.
    expect(merged.referenceRange).toBeUndefined();
  });

  it('takes a duplicate\'s range and flag together into a survivor without a reading, when the unit is the same', () => {
    const bare = nr('team-a', obs(['2160-0'], at, q(0.6, 'mg/dL'), RICH));
    const range = [{ low: q(0.2, 'mg/dL'), high: q(0.5, 'mg/dL') }];
    const sameUnit = nr('team-b', obs(['2160-0'], at, q(0.6, 'mg/dL'), { interpretation: [flag('H')], referenceRange: range }));
    const merged = dedupeObservations([bare, sameUnit]).survivors[0]?.resource as Observation;
    expect(merged.id).toBe(bare.resource.id);
    expect(merged.referenceRange).toEqual(range);
    expect(merged.interpretation).toEqual([flag('H')]);
    // From a duplicate in another unit: neither.
    const other = dedupeObservations([bare, nr('team-b', molar())]);
    expect(other.merges).toHaveLength(1);
    const fromMolar = other.survivors[0]?.resource as Observation;
    expect(fromMolar.valueQuantity).toEqual(q(0.6, 'mg/dL'));
    expect(fromMolar.referenceRange).toBeUndefined();
    expect(fromMolar.interpretation).toBeUndefined();
  });
});

describe('procedure:code-date keeps procedures of different status apart', () => {
  const scope = (status: Procedure['status'], extra: Partial<Procedure> = {}): Procedure => ({
    resourceType: 'Procedure', status, subject: { reference: PATIENT }, performedDateTime: '2026-03-10T09:00:00-07:00',
    code: { coding: [{ system: SNOMED, code: '76009000', display: 'Esophagogastroduodenoscopy' }] }, ...extra,
  });

  it('does not merge a stopped and a completed endoscopy of the same day', () => {
    const stopped = nr('team-a', scope('stopped', { note: [{ text: 'aborted: laryngospasm' }], statusReason: { text: 'laryngospasm' } }));
    const completed = nr('team-b', scope('completed'));
    const r = dedupeProcedures([stopped, completed]);
    expect(r.merges).toEqual([]);
    expect(r.survivors.map((s) => (s.resource as Procedure).status).sort()).toEqual(['completed', 'stopped']);
  });

  it('still merges two completed records, and never joins two statuses through a record without one', () => {
    expect(dedupeProcedures([nr('team-a', scope('completed')), nr('team-b', scope('completed'))]).merges).toHaveLength(1);
    const { status: _omit, ...noStatus } = scope('completed');
    for (const input of permutations([nr('team-c', noStatus as Procedure), nr('team-a', scope('stopped')), nr('team-b', scope('completed'))])) {
      const r = dedupeProcedures(input);
      expect(r.survivors.map((s) => (s.resource as Procedure).status).filter((s) => s !== undefined).sort()).toEqual(['completed', 'stopped']);
    }
  });
});

describe('allergyintolerance:code keeps verification statuses apart', () => {
  const CLINICAL = 'http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical';
  const VERIFICATION = 'http://terminology.hl7.org/CodeSystem/allergyintolerance-verification';
  const penicillin = (verification: string | undefined, criticality: AllergyIntolerance['criticality'], extra: Partial<AllergyIntolerance> = {}): AllergyIntolerance => ({
    resourceType: 'AllergyIntolerance', patient: { reference: PATIENT }, criticality,
    code: { coding: [{ system: SNOMED, code: '91936005', display: 'Allergy to penicillin' }] },
    clinicalStatus: { coding: [{ system: CLINICAL, code: 'active' }] },
    ...(verification ? { verificationStatus: { coding: [{ system: VERIFICATION, code: verification }] } } : {}), ...extra,
  });

  it('does not merge a confirmed high-criticality allergy into an unconfirmed one', () => {
    const unconfirmed = nr('team-a', penicillin('unconfirmed', 'low', { note: [{ text: 'family reports a rash in infancy' }], recordedDate: '2025-01-01' }));
    const confirmed = nr('team-b', penicillin('confirmed', 'high'));
    const r = dedupeAllergyIntolerances([unconfirmed, confirmed]);
    expect(r.merges).toEqual([]);
    expect(r.survivors.map((s) => (s.resource as AllergyIntolerance).verificationStatus?.coding?.[0]?.code).sort()).toEqual(['confirmed', 'unconfirmed']);
  });

  it('still merges two confirmed records, and never joins two verification statuses through a record without one', () => {
    expect(dedupeAllergyIntolerances([nr('team-a', penicillin('confirmed', 'low')), nr('team-b', penicillin('confirmed', 'high'))]).merges).toHaveLength(1);
    for (const input of permutations([nr('team-c', penicillin(undefined, undefined)), nr('team-a', penicillin('unconfirmed', 'low')), nr('team-b', penicillin('confirmed', 'high'))])) {
      const r = dedupeAllergyIntolerances(input);
      expect(r.survivors).toHaveLength(2);
      expect(r.survivors.map((s) => (s.resource as AllergyIntolerance).verificationStatus?.coding?.[0]?.code).sort()).toEqual(['confirmed', 'unconfirmed']);
    }
  });
});

describe('DocumentManifest.content follows a merge (Reference(Any), not an attachment)', () => {
  const pdf = (extra: Partial<DocumentReference> = {}): DocumentReference => ({
    resourceType: 'DocumentReference', status: 'current', subject: { reference: PATIENT },
    content: [{ attachment: { contentType: 'application/pdf', url: 'https://files.example.org/discharge.pdf', hash: 'qZk+NkcGgWq6PiVxeFDCbJzQ2J0=' } }], ...extra,
  });

  it('redirects a manifest\'s content naming the merged-away DocumentReference to the survivor', () => {
    const rich = nr('team-a', pdf({ description: 'Discharge summary', date: '2026-03-12T10:00:00Z' }));
    const copy = nr('team-b', pdf());
    const manifest = nr('team-b', {
      resourceType: 'DocumentManifest', status: 'current', subject: { reference: PATIENT }, content: [{ reference: copy.fullUrl }, { reference: rich.fullUrl }],
    } as DocumentManifest);
    for (const run of [dedupeDocumentReferences, (rs: readonly NormalizedResource[]) => { const r = dedupe(rs); return { survivors: r.resources, merges: r.merges }; }]) {
      const r = run([rich, copy, manifest]);
      expect(r.merges).toEqual([expect.objectContaining({ survivor: rich.fullUrl, mergedKeys: [copy.key] })]);
      const out = r.survivors.find((s) => s.resource.resourceType === 'DocumentManifest')?.resource as DocumentManifest;
      // Both now name the survivor: one reference left.
      expect(out.content).toEqual([{ reference: rich.fullUrl }]);
      // The DocumentReference's own content (an attachment) is untouched.
      expect((r.survivors.find((s) => s.fullUrl === rich.fullUrl)?.resource as DocumentReference).content).toEqual(rich.resource.content);
    }
  });
});
