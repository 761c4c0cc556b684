/**
 * The one-line descriptions the case record's sections show (Composition narrative): dates and
 * times as a reader wants them, and a DiagnosticReport's few results by value.
 */
import type { Coding, Condition, DiagnosticReport, FhirResource, ImagingStudy, MedicationRequest, Observation } from 'fhir/r4';
import { describe as describeLine } from '../../src/normalize/composition';
import { readableDateTime } from '../../src/normalize/readable-date';
import { FAMILY_UPLOAD_TAG, uploadFlagTag } from '../../src/uploads/origin';

describe('readableDateTime', () => {
  it.each([
    ['2025-10-14T09:55:00-06:00', '2025-10-14 09:55 (UTC-06:00)'],
    ['2026-05-12T17:35:00Z', '2026-05-12 17:35 (UTC)'],
    ['2026-05-12T17:35:59.123+00:00', '2026-05-12 17:35 (UTC)'],
    ['2026-05-12T08:05:00+05:30', '2026-05-12 08:05 (UTC+05:30)'],
    ['2026-05-12T08:05:00', '2026-05-12 08:05'],
    ['2026-05-12', '2026-05-12'],
    ['2026-05', '2026-05'],
    ['2026', '2026'],
    ['yesterday', 'yesterday'],
  ])('%s reads %s', (value, shown) => {
    expect(readableDateTime(value)).toBe(shown);
  });
});

const hba1cCode = { coding: [{ system: 'http://loinc.org', code: '4548-4' }], text: 'Hemoglobin A1c' };

function a1c(id: string, value: number): Observation {
  return { resourceType: 'Observation', id, status: 'final', code: hba1cCode, valueQuantity: { value, unit: '%', system: 'http://unitsofmeasure.org', code: '%' } };
}

function report(results: string[], code = hba1cCode): DiagnosticReport {
  return { resourceType: 'DiagnosticReport', status: 'final', code, effectiveDateTime: '2026-10-13T09:00:00-06:00', result: results.map((reference) => ({ reference })) };
}

describe('section lines', () => {
  it('shows times with their offset, and dates as they are', () => {
    const med: MedicationRequest = {
      resourceType: 'MedicationRequest', status: 'active', intent: 'order', authoredOn: '2026-05-12T17:35:00Z',
      medicationCodeableConcept: { text: 'cholecalciferol' }, subject: { reference: 'urn:uuid:p' },
    };
    expect(describeLine(med, new Map())).toBe('2026-05-12 17:35 (UTC) — cholecalciferol — active');
    const condition: Condition = {
      resourceType: 'Condition', subject: { reference: 'urn:uuid:p' }, code: { text: 'Vitamin D deficiency' },
      onsetDateTime: '2024-10-15', abatementDateTime: '2025-04-15T10:00:00-06:00',
    };
    expect(describeLine(condition, new Map())).toBe('Vitamin D deficiency — onset 2024-10-15 — resolved 2025-04-15 10:00 (UTC-06:00)');
  });

  it("shows a report's few results by value, naming those of another test than the report", () => {
    const byUrl = new Map<string, FhirResource>([
      ['urn:uuid:a', a1c('a', 8.9)],
      ['urn:uuid:g', { ...a1c('g', 182), code: { text: 'Glucose' }, valueQuantity: { value: 182, unit: 'mg/dL' } }],
    ]);
    expect(describeLine(report(['urn:uuid:a']), byUrl)).toBe('2026-10-13 09:00 (UTC-06:00) — Hemoglobin A1c — 8.9 %');
    expect(describeLine(report(['urn:uuid:a', 'urn:uuid:g']), byUrl)).toBe('2026-10-13 09:00 (UTC-06:00) — Hemoglobin A1c — 8.9 %, Glucose 182 mg/dL');
  });

  it('counts the results of a panel, or of a report whose results are not all in the bundle with a value', () => {
    const byUrl = new Map<string, FhirResource>(['a', 'b', 'c', 'd'].map((id) => [`urn:uuid:${id}`, a1c(id, 7)]));
    expect(describeLine(report(['urn:uuid:a', 'urn:uuid:b', 'urn:uuid:c', 'urn:uuid:d']), byUrl)).toMatch(/ — 4 results$/);
    expect(describeLine(report(['urn:uuid:a', 'urn:uuid:gone']), byUrl)).toMatch(/ — 2 results$/);
    const noValue: Observation = { resourceType: 'Observation', status: 'final', code: { text: 'Culture' } };
    expect(describeLine(report(['urn:uuid:n']), new Map([['urn:uuid:n', noValue]]))).toMatch(/ — 1 result$/);
  });
});

describe('an ImagingStudy whose files name another patient', () => {
  const study = (tags: Coding[]): ImagingStudy => ({
    resourceType: 'ImagingStudy', status: 'available', subject: { reference: 'urn:uuid:p' }, started: '2024-01-02T10:15:00Z',
    description: 'MRI brain', numberOfSeries: 1, numberOfInstances: 3, meta: { tag: tags },
  });

  it('says so first, plainly, and to check the images before use', () => {
    const line = describeLine(study([{ ...FAMILY_UPLOAD_TAG }, uploadFlagTag('identity-mismatch')]), new Map());
    expect(line).toBe('CAUTION: these images name a patient other than the case patient; check them before use — 2024-01-02 10:15 (UTC) — MRI brain — 1 series, 3 images');
  });

  it('a study without the flag reads as before', () => {
    expect(describeLine(study([{ ...FAMILY_UPLOAD_TAG }, uploadFlagTag('unreadable')]), new Map())).toBe('2024-01-02 10:15 (UTC) — MRI brain — 1 series, 3 images');
  });
});

describe('statuses a line must say', () => {
  const none = new Map<string, FhirResource>();
  const cc = (system: string, code: string, display: string) => ({ coding: [{ system, code, display }] });
  const CLINICAL = 'http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical';
  const VERIFICATION = 'http://terminology.hl7.org/CodeSystem/allergyintolerance-verification';
  const CONDITION_VERIFICATION = 'http://terminology.hl7.org/CodeSystem/condition-ver-status';

  it('names a resolved or unconfirmed allergy, and says nothing more of an active confirmed one', () => {
    const peanut = (clinical: string, verification: string): FhirResource => ({
      resourceType: 'AllergyIntolerance', patient: { reference: 'urn:uuid:p' }, code: { text: 'Peanut' }, criticality: 'high',
      clinicalStatus: cc(CLINICAL, clinical, clinical[0]?.toUpperCase() + clinical.slice(1)),
      verificationStatus: cc(VERIFICATION, verification, verification[0]?.toUpperCase() + verification.slice(1)),
    });
    expect(describeLine(peanut('active', 'confirmed'), none)).toBe('Peanut — criticality high');
    expect(describeLine(peanut('resolved', 'confirmed'), none)).toBe('Peanut — criticality high — Resolved');
    expect(describeLine(peanut('active', 'unconfirmed'), none)).toBe('Peanut — criticality high — Unconfirmed');
  });

  it('names a provisional diagnosis', () => {
    const celiac: Condition = {
      resourceType: 'Condition', subject: { reference: 'urn:uuid:p' }, code: { text: 'Celiac disease' },
      clinicalStatus: cc('http://terminology.hl7.org/CodeSystem/condition-clinical', 'active', 'Active'),
      verificationStatus: cc(CONDITION_VERIFICATION, 'provisional', 'Provisional'),
    };
    expect(describeLine(celiac, none)).toBe('Celiac disease — Active — Provisional');
  });

  it('says a vaccine or procedure was not done, and why', () => {
    const mmr: FhirResource = {
      resourceType: 'Immunization', status: 'not-done', patient: { reference: 'urn:uuid:p' }, occurrenceDateTime: '2025-03-01',
      vaccineCode: { text: 'MMR' }, statusReason: { text: 'Parent refused' },
    };
    expect(describeLine(mmr, none)).toBe('2025-03-01 — MMR — not done (Parent refused)');
    const scope: FhirResource = { resourceType: 'Procedure', status: 'stopped', subject: { reference: 'urn:uuid:p' }, performedDateTime: '2026-02-03', code: { text: 'Upper endoscopy' } };
    expect(describeLine(scope, none)).toBe('2026-02-03 — Upper endoscopy — stopped');
    expect(describeLine({ ...scope, status: 'completed' } as FhirResource, none)).toBe('2026-02-03 — Upper endoscopy');
  });

  it('names a report or result that is not final', () => {
    expect(describeLine({ ...report([]), status: 'preliminary', conclusion: 'Pending review' }, none)).toBe('2026-10-13 09:00 (UTC-06:00) — Hemoglobin A1c — preliminary — Pending review');
    expect(describeLine({ ...a1c('x', 8.6), status: 'amended' }, none)).toBe('Hemoglobin A1c — 8.6 % — amended');
  });
});

describe('upload cautions', () => {
  it('says first that files claim one image identity with different content', () => {
    const study: ImagingStudy = {
      resourceType: 'ImagingStudy', status: 'available', subject: { reference: 'urn:uuid:p' }, started: '2026-01-05', description: 'MR brain',
      meta: { tag: [FAMILY_UPLOAD_TAG, uploadFlagTag('sop-instance-uid-conflict')] }, numberOfSeries: 1, numberOfInstances: 2,
    };
    expect(describeLine(study, new Map())).toBe(
      'CAUTION: two or more of these images claim the same image identity with different content; check them before use — 2026-01-05 — MR brain — 1 series, 2 images',
    );
  });
});
