/**
 * The one-line descriptions the case record's sections show (Composition narrative): dates and
 * times as a reader wants them, a DiagnosticReport's results by name, every dosage step, reference
 * ranges, every form of a value, onset and abatement, and the statuses that change how a line reads.
 */
import type { Coding, Condition, DiagnosticReport, FhirResource, ImagingStudy, MedicationRequest, Observation } from 'fhir/r4';
import { describe as describeLine, sectionOf } from '../../src/normalize/composition';
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

  it("names a report's few results without repeating their values (each result has its own line, with its flag)", () => {
    const byUrl = new Map<string, FhirResource>([
      ['urn:uuid:a', a1c('a', 8.9)],
      ['urn:uuid:g', { ...a1c('g', 182), code: { text: 'Glucose' }, valueQuantity: { value: 182, unit: 'mg/dL' } }],
    ]);
    expect(describeLine(report(['urn:uuid:a']), byUrl)).toBe('2026-10-13 09:00 (UTC-06:00) — Hemoglobin A1c — 1 result');
    expect(describeLine(report(['urn:uuid:a', 'urn:uuid:g']), byUrl)).toBe('2026-10-13 09:00 (UTC-06:00) — Hemoglobin A1c — 2 results: Hemoglobin A1c; Glucose');
    expect(describeLine(report(['urn:uuid:a', 'urn:uuid:g']), byUrl)).not.toContain('8.9');
  });

  it('counts the results of a panel, or of a report whose results are not all in the bundle', () => {
    const byUrl = new Map<string, FhirResource>(['a', 'b', 'c', 'd'].map((id) => [`urn:uuid:${id}`, a1c(id, 7)]));
    expect(describeLine(report(['urn:uuid:a', 'urn:uuid:b', 'urn:uuid:c', 'urn:uuid:d']), byUrl)).toMatch(/ — 4 results$/);
    expect(describeLine(report(['urn:uuid:a', 'urn:uuid:gone']), byUrl)).toMatch(/ — 2 results$/);
    // A result without a value is named like any other.
    const noValue: Observation = { resourceType: 'Observation', status: 'final', code: { text: 'Culture' } };
    expect(describeLine(report(['urn:uuid:n']), new Map([['urn:uuid:n', noValue]]))).toMatch(/ — 1 result: Culture$/);
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

describe('medication lines', () => {
  const none = new Map<string, FhirResource>();
  const request = (extra: Partial<MedicationRequest>): MedicationRequest => ({
    resourceType: 'MedicationRequest', status: 'active', intent: 'order', subject: { reference: 'urn:uuid:p' }, authoredOn: '2025-02-01',
    medicationCodeableConcept: { text: 'Methotrexate 2.5 mg tablet' }, ...extra,
  });

  it('builds a dose the source gave only in structured form, and shows every step', () => {
    const weekly = request({ dosageInstruction: [{ timing: { repeat: { frequency: 1, period: 1, periodUnit: 'wk' } }, route: { text: 'oral' }, doseAndRate: [{ doseQuantity: { value: 10, unit: 'mg' } }] }] });
    expect(describeLine(weekly, none)).toBe('2025-02-01 — Methotrexate 2.5 mg tablet — 10 mg oral once weekly — active');
    const steps = request({
      medicationCodeableConcept: { text: 'prednisolone' },
      dosageInstruction: [
        { sequence: 1, text: '2 mg/kg once daily for 5 days' },
        { sequence: 2, doseAndRate: [{ doseRange: { low: { value: 5, unit: 'mg' }, high: { value: 10, unit: 'mg' } } }], timing: { repeat: { frequency: 1, period: 6, periodUnit: 'h' } }, asNeededCodeableConcept: { text: 'wheeze' } },
        { sequence: 2, doseAndRate: [{ doseQuantity: { value: 1, unit: 'puff' } }], timing: { repeat: { frequency: 2, period: 1, periodUnit: 'd', boundsDuration: { value: 8, unit: 'wk' } } }, asNeededBoolean: true },
      ],
    });
    expect(describeLine(steps, none)).toBe(
      '2025-02-01 — prednisolone — 2 mg/kg once daily for 5 days; then 5–10 mg every 6 hours as needed for wheeze; 1 puff twice daily for 8 wk as needed — active',
    );
  });

  it('names the drug of a contained Medication, and says an intent other than order and the status', () => {
    const contained = request({
      medicationCodeableConcept: undefined, medicationReference: { reference: '#med0320' }, intent: 'proposal', status: 'stopped',
      contained: [{ resourceType: 'Medication', id: 'med0320', code: { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '308182', display: 'Amoxicillin 250 MG Oral Capsule' }] } }],
      dosageInstruction: [{ text: '250 mg three times daily' }],
    });
    expect(describeLine(contained, none)).toBe('2025-02-01 — Amoxicillin 250 MG Oral Capsule — 250 mg three times daily — intent: proposal — stopped');
    // A reference to a contained resource the request does not hold falls back to its display.
    expect(describeLine({ ...contained, contained: [], medicationReference: { reference: '#gone', display: 'amoxicillin' } }, none)).toContain(' — amoxicillin — ');
  });
});

describe('result lines', () => {
  const none = new Map<string, FhirResource>();
  const lab = (extra: Partial<Observation>): Observation => ({
    resourceType: 'Observation', status: 'final', code: { text: 'Potassium' }, effectiveDateTime: '2025-05-01', subject: { reference: 'urn:uuid:p' }, ...extra,
  });
  const mmol = (value: number) => ({ value, unit: 'mmol/L', system: 'http://unitsofmeasure.org', code: 'mmol/L' });

  it('shows the reference range, and when the source gave no flag, that the value is outside it (computed)', () => {
    const k = lab({ valueQuantity: mmol(6.9), referenceRange: [{ low: mmol(3.5), high: mmol(5.1) }] });
    expect(describeLine(k, none)).toBe('2025-05-01 — Potassium — 6.9 mmol/L — reference range 3.5–5.1 mmol/L — above reference range (computed)');
    expect(describeLine({ ...k, valueQuantity: mmol(3.1) }, none)).toMatch(/ — below reference range \(computed\)$/);
    expect(describeLine({ ...k, valueQuantity: mmol(4.2) }, none)).toBe('2025-05-01 — Potassium — 4.2 mmol/L — reference range 3.5–5.1 mmol/L');
    // The source's interpretation is shown as given, never second-guessed.
    expect(describeLine({ ...k, interpretation: [{ text: 'Critical high' }] }, none)).toBe('2025-05-01 — Potassium — 6.9 mmol/L — reference range 3.5–5.1 mmol/L — Critical high');
    // Another unit, or a range given only as text: shown, not compared.
    expect(describeLine({ ...k, valueQuantity: { value: 6.9, unit: 'mEq/L' } }, none)).not.toContain('computed');
    expect(describeLine(lab({ valueQuantity: mmol(6.9), referenceRange: [{ text: '3.5 to 5.1' }] }), none)).toBe('2025-05-01 — Potassium — 6.9 mmol/L — reference range 3.5 to 5.1');
  });

  it("shows the age-specific range for the child's age when her birth date is known, else every range with its age", () => {
    const years = (value: number) => ({ value, unit: 'years', system: 'http://unitsofmeasure.org', code: 'a' });
    const alp = lab({
      code: { text: 'Alkaline phosphatase' }, valueQuantity: { value: 520, unit: 'U/L' }, effectiveDateTime: '2026-05-12T17:30:00Z',
      referenceRange: [
        { low: { value: 150, unit: 'U/L' }, high: { value: 420, unit: 'U/L' }, age: { low: years(4), high: years(9) } },
        { low: { value: 130, unit: 'U/L' }, high: { value: 560, unit: 'U/L' }, age: { low: years(10), high: years(14) } },
      ],
    });
    const child = new Map<string, FhirResource>([['urn:uuid:p', { resourceType: 'Patient', birthDate: '2017-04-22' }]]);
    expect(describeLine(alp, child)).toBe(
      '2026-05-12 17:30 (UTC) — Alkaline phosphatase — 520 U/L — reference range 150–420 U/L (age 4–9 years) — above reference range (computed)',
    );
    expect(describeLine(alp, none)).toBe(
      '2026-05-12 17:30 (UTC) — Alkaline phosphatase — 520 U/L — reference range 150–420 U/L (age 4–9 years); 130–560 U/L (age 10–14 years)',
    );
  });

  it('shows ratio, range, dateTime, time and period values, and components after a main value', () => {
    expect(describeLine(lab({ code: { text: 'ANA titer' }, valueRatio: { numerator: { value: 1 }, denominator: { value: 640 } } }), none)).toBe('2025-05-01 — ANA titer — 1:640');
    expect(describeLine(lab({ code: { text: 'Urine protein' }, valueRange: { low: { value: 30, unit: 'mg/dL' }, high: { value: 100, unit: 'mg/dL' } } }), none)).toBe('2025-05-01 — Urine protein — 30–100 mg/dL');
    expect(describeLine(lab({ code: { text: 'Last seizure' }, valueDateTime: '2025-04-30T06:10:00-06:00' }), none)).toBe('2025-05-01 — Last seizure — 2025-04-30 06:10 (UTC-06:00)');
    expect(describeLine(lab({ code: { text: 'Bedtime' }, valueTime: '20:30:00' }), none)).toBe('2025-05-01 — Bedtime — 20:30:00');
    expect(describeLine(lab({ code: { text: 'Fever' }, valuePeriod: { start: '2025-04-28', end: '2025-04-30' } }), none)).toBe('2025-05-01 — Fever — 2025-04-28 to 2025-04-30');
    const bp = lab({
      code: { text: 'Blood pressure' }, valueString: 'sitting',
      component: [
        { code: { text: 'Systolic' }, valueQuantity: { value: 128, unit: 'mm[Hg]' }, interpretation: [{ text: 'High' }] },
        { code: { coding: [{ system: 'http://loinc.org', code: '8462-4' }] }, valueQuantity: { value: 70, unit: 'mm[Hg]' } },
      ],
    });
    expect(describeLine(bp, none)).toBe('2025-05-01 — Blood pressure — sitting — Systolic 128 mm[Hg] (High), LOINC 8462-4 70 mm[Hg]');
  });

  it('names a code without display by its system, not as if the code were a name', () => {
    const bare = lab({ code: { coding: [{ system: 'http://loinc.org', code: '75773-2' }] }, valueString: 'Comfort care' });
    expect(describeLine(bare, none)).toBe('2025-05-01 — LOINC 75773-2 — Comfort care');
    expect(describeLine(lab({ code: { coding: [{ code: 'K-SER' }] }, valueQuantity: mmol(4) }), none)).toBe('2025-05-01 — code K-SER — 4 mmol/L');
  });
});

describe('conditions: course and section', () => {
  const none = new Map<string, FhirResource>();
  const CLINICAL = 'http://terminology.hl7.org/CodeSystem/condition-clinical';
  const clinical = (code: string) => ({ coding: [{ system: CLINICAL, code, display: code[0]?.toUpperCase() + code.slice(1) }] });
  const condition = (extra: Partial<Condition>): Condition => ({ resourceType: 'Condition', subject: { reference: 'urn:uuid:p' }, code: { text: 'Otitis media' }, ...extra });

  it('lists a condition with an abatement but no clinicalStatus as past illness', () => {
    expect(sectionOf(condition({ abatementDateTime: '2024-02-20' }))).toBe('pastIllness');
    expect(sectionOf(condition({ abatementString: 'age 3' }))).toBe('pastIllness');
    expect(sectionOf(condition({}))).toBe('problems');
  });

  it('keeps a condition said active with an abatement among problems, flagged', () => {
    const c = condition({ clinicalStatus: clinical('active'), abatementDateTime: '2024-02-20' });
    expect(sectionOf(c)).toBe('problems');
    expect(describeLine(c, none)).toBe('Otitis media — resolved 2024-02-20 — Active — abatement recorded');
  });

  it('shows every form of onset and abatement', () => {
    expect(describeLine(condition({ code: { text: 'Febrile seizure' }, clinicalStatus: clinical('inactive'), onsetAge: { value: 18, unit: 'mo', system: 'http://unitsofmeasure.org', code: 'mo' }, abatementAge: { value: 3, unit: 'a', system: 'http://unitsofmeasure.org', code: 'a' } }), none))
      .toBe('Febrile seizure — onset at age 18 mo — resolved at age 3 a — Inactive');
    expect(describeLine(condition({ code: { text: 'Croup' }, onsetString: 'toddler', abatementPeriod: { start: '2021-01-04', end: '2021-01-09' } }), none))
      .toBe('Croup — onset toddler — resolved 2021-01-04 to 2021-01-09');
    expect(describeLine(condition({ code: { text: 'Eczema' }, onsetRange: { low: { value: 2, unit: 'mo' }, high: { value: 4, unit: 'mo' } }, abatementString: 'by school age' }), none))
      .toBe('Eczema — onset at age 2–4 mo — resolved by school age');
  });
});

describe('event statuses', () => {
  const none = new Map<string, FhirResource>();

  it('says an encounter was cancelled or is planned; a finished one reads as before', () => {
    const admission: FhirResource = {
      resourceType: 'Encounter', status: 'cancelled', class: { code: 'IMP', display: 'inpatient encounter' }, type: [{ text: 'Admission' }],
      period: { start: '2025-07-01' }, serviceProvider: { display: 'Big Sky Children’s' },
    };
    expect(describeLine(admission, none)).toBe('2025-07-01 — Admission, Big Sky Children’s — cancelled');
    expect(describeLine({ ...admission, status: 'planned' }, none)).toMatch(/ — planned$/);
    expect(describeLine({ ...admission, status: 'finished' }, none)).toBe('2025-07-01 — Admission, Big Sky Children’s');
    expect(sectionOf({ ...admission, status: 'entered-in-error' })).toBeUndefined();
  });

  it('marks a superseded document, a subpotent dose and the severity of a reaction', () => {
    const doc: FhirResource = { resourceType: 'DocumentReference', status: 'superseded', type: { text: 'Discharge summary' }, date: '2025-07-02', content: [{ attachment: { contentType: 'text/plain' } }] };
    expect(describeLine(doc, none)).toBe('2025-07-02 — Discharge summary — superseded');
    expect(describeLine({ ...doc, status: 'current' }, none)).toBe('2025-07-02 — Discharge summary');
    const dose: FhirResource = { resourceType: 'Immunization', status: 'completed', isSubpotent: true, patient: { reference: 'urn:uuid:p' }, vaccineCode: { text: 'DTaP' }, occurrenceDateTime: '2025-04-02' };
    expect(describeLine(dose, none)).toBe('2025-04-02 — DTaP — subpotent dose');
    const peanut: FhirResource = { resourceType: 'AllergyIntolerance', patient: { reference: 'urn:uuid:p' }, code: { text: 'Peanut' }, criticality: 'high', reaction: [{ manifestation: [{ text: 'Anaphylaxis' }], severity: 'severe' }, { manifestation: [{ text: 'Hives' }] }] };
    expect(describeLine(peanut, none)).toBe('Peanut — criticality high — Anaphylaxis (severe), Hives');
  });
});

describe('an ImagingStudy without description', () => {
  it('reads as the modalities and body sites of its series', () => {
    const study: ImagingStudy = {
      resourceType: 'ImagingStudy', status: 'available', subject: { reference: 'urn:uuid:p' }, started: '2026-01-05', numberOfSeries: 2, numberOfInstances: 40,
      series: [
        { uid: '1.2.3.1', modality: { system: 'http://dicom.nema.org/resources/ontology/DCM', code: 'MR' }, bodySite: { system: 'http://snomed.info/sct', code: '12738006', display: 'Brain' } },
        { uid: '1.2.3.2', modality: { system: 'http://dicom.nema.org/resources/ontology/DCM', code: 'MR' }, bodySite: { system: 'http://snomed.info/sct', code: '12738006', display: 'Brain' } },
      ],
    };
    expect(describeLine(study, new Map())).toBe('2026-01-05 — MR of Brain — 2 series, 40 images');
  });
});
