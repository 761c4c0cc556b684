/**
 * Each dedupe rule on hand-built NormalizedResources: what merges, what must not, what the
 * survivor gets, and the engine's guarantees (deterministic survivor, redirected and
 * collapsed references, input untouched).
 */
import { createHash } from 'node:crypto';
import type {
  AllergyIntolerance, Condition, DiagnosticReport, DocumentReference, Encounter, FhirResource, ImagingStudy, Immunization,
  Medication, MedicationRequest, Observation, Procedure,
} from 'fhir/r4';
import {
  dedupe, dedupeAllergyIntolerances, dedupeConditions, dedupeDiagnosticReports, dedupeDocumentReferences, dedupeEncounters,
  dedupeImagingStudies, dedupeImmunizations, dedupeMedicationRequests, dedupeObservations, dedupeProcedures, runRules,
} from '../../src/normalize/dedupe/index';
import { sameQuantity } from '../../src/normalize/dedupe/quantity';
import { studyUids } from '../../src/normalize/dedupe/imaging-study';
import type { NormalizedResource } from '../../src/normalize/types';

const LOINC = 'http://loinc.org';
const SNOMED = 'http://snomed.info/sct';
const UCUM = 'http://unitsofmeasure.org';
const PATIENT = 'urn:uuid:00000000-0000-5000-8000-000000000000';

let counter = 0;
/** A NormalizedResource of `sourceId` with a fresh uuid (or the given id). */
function nr<T extends FhirResource>(sourceId: string, resource: T, id?: string): NormalizedResource & { resource: T } {
  const uuid = id ?? `00000000-0000-5000-8000-${String(++counter).padStart(12, '0')}`;
  return { key: `${sourceId}|${resource.resourceType}|${uuid}`, fullUrl: `urn:uuid:${uuid}`, resource: { ...resource, id: uuid }, sourceId, origin: 'local-ehr' };
}

function obs(code: { system: string; code: string }[], effective: string, value: Observation['valueQuantity'], extra: Partial<Observation> = {}): Observation {
  return { resourceType: 'Observation', status: 'final', code: { coding: code }, subject: { reference: PATIENT }, effectiveDateTime: effective, valueQuantity: value, ...extra };
}
const q = (value: number, unit: string): Observation['valueQuantity'] => ({ value, unit, system: UCUM, code: unit });

describe('observation:code-time-value', () => {
  const hba1c = [{ system: LOINC, code: '4548-4' }];

  it('merges the same result written with a local offset at one source and UTC at the other', () => {
    const a = nr('a', obs(hba1c, '2026-04-14T09:10:00-06:00', q(8.6, '%')));
    const b = nr('b', obs([{ system: 'http://b/lab', code: 'HGBA1C' }, ...hba1c], '2026-04-14T15:10:00Z', q(8.6, '%')));
    const r = dedupeObservations([a, b]);
    expect(r.survivors).toHaveLength(1);
    expect(r.merges[0]?.rule).toBe('observation:code-time-value');
    expect((r.survivors[0]?.resource as Observation).code.coding?.map((c) => c.code).sort()).toEqual(['4548-4', 'HGBA1C']);
  });

  it('keeps results apart that are hours apart on the same day, or a week apart with the same value', () => {
    const a = nr('a', obs(hba1c, '2026-04-14T08:00:00Z', q(8.4, '%')));
    const sameDay = nr('b', obs(hba1c, '2026-04-14T14:30:00Z', q(8.4, '%')));
    const weekLater = nr('b', obs(hba1c, '2026-04-21T08:00:00Z', q(8.4, '%')));
    expect(dedupeObservations([a, sameDay, weekLater]).merges).toEqual([]);
  });

  it('keeps results apart that differ in value at the same instant', () => {
    const a = nr('a', obs(hba1c, '2026-04-14T08:00:00Z', q(8.4, '%')));
    const b = nr('b', obs(hba1c, '2026-04-14T08:00:00Z', q(8.9, '%')));
    expect(dedupeObservations([a, b]).merges).toEqual([]);
  });

  it('compares values after UCUM conversion, within the reported precision', () => {
    expect(sameQuantity(q(182, 'mg/dL') ?? {}, q(10.1, 'mmol/L') ?? {}, ['2345-7', '14749-6'])).toBe(true);
    expect(sameQuantity(q(182, 'mg/dL') ?? {}, q(10.4, 'mmol/L') ?? {}, ['2345-7'])).toBe(false);
    expect(sameQuantity(q(182, 'mg/dL') ?? {}, q(10.1, 'mmol/L') ?? {}, [])).toBe(false); // no molar mass without the analyte
    expect(sameQuantity(q(1.2, 'g/dL') ?? {}, q(12, 'g/L') ?? {})).toBe(true);
    expect(sameQuantity(q(2.31, 'm[IU]/L') ?? {}, q(2.31, 'u[IU]/mL') ?? {})).toBe(true);
    expect(sameQuantity(q(7.2, '10*3/uL') ?? {}, q(7200, '/uL') ?? {})).toBe(true);
    expect(sameQuantity(q(37, 'Cel') ?? {}, q(98.6, '[degF]') ?? {})).toBe(true);
    expect(sameQuantity(q(20, 'kg') ?? {}, q(44.1, '[lb_av]') ?? {})).toBe(true);
    expect(sameQuantity(q(5, 'mg') ?? {}, q(5, 'mL') ?? {})).toBe(false);
    expect(sameQuantity({ value: 5, comparator: '<', unit: 'mg/L' }, { value: 5, unit: 'mg/L' })).toBe(false);
  });

  it('merges a molar result carrying both LOINC codes with the mass result', () => {
    const a = nr('a', obs([{ system: LOINC, code: '2345-7' }], '2026-04-14T09:10:00-06:00', q(182, 'mg/dL')));
    const b = nr('b', obs([{ system: LOINC, code: '14749-6' }, { system: LOINC, code: '2345-7' }], '2026-04-14T15:10:00Z', q(10.1, 'mmol/L')));
    expect(dedupeObservations([a, b]).merges).toHaveLength(1);
  });

  it('compares components (blood pressure) pairwise', () => {
    const bp = (sys: number, dia: number): Observation => ({
      resourceType: 'Observation', status: 'final', code: { coding: [{ system: LOINC, code: '85354-9' }] }, effectiveDateTime: '2026-01-01T10:00:00Z',
      component: [
        { code: { coding: [{ system: LOINC, code: '8480-6' }] }, valueQuantity: q(sys, 'mm[Hg]') },
        { code: { coding: [{ system: LOINC, code: '8462-4' }] }, valueQuantity: q(dia, 'mm[Hg]') },
      ],
    });
    expect(dedupeObservations([nr('a', bp(110, 70)), nr('b', bp(110, 70))]).merges).toHaveLength(1);
    expect(dedupeObservations([nr('a', bp(110, 70)), nr('b', bp(110, 75))]).merges).toEqual([]);
  });

  it('never merges entered-in-error or results without an effective time', () => {
    const a = nr('a', obs(hba1c, '2026-04-14T08:00:00Z', q(8.4, '%')));
    const err = nr('b', obs(hba1c, '2026-04-14T08:00:00Z', q(8.4, '%'), { status: 'entered-in-error' }));
    const noTime1 = nr('a', { ...obs(hba1c, '', q(8.4, '%')), effectiveDateTime: undefined });
    const noTime2 = nr('b', { ...obs(hba1c, '', q(8.4, '%')), effectiveDateTime: undefined });
    expect(dedupeObservations([a, err, noTime1, noTime2]).merges).toEqual([]);
  });
});

describe('condition:code-onset', () => {
  const cond = (codes: { system: string; code: string }[], onset: string, extra: Partial<Condition> = {}): Condition => ({
    resourceType: 'Condition', subject: { reference: PATIENT }, code: { coding: codes }, onsetDateTime: onset, ...extra,
  });
  const icdWithSnomed = [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'E55.9' }, { system: SNOMED, code: '34713006' }];

  it('merges SNOMED at one source with ICD-10-CM + mapped SNOMED at the other, same onset date', () => {
    const r = dedupeConditions([nr('a', cond([{ system: SNOMED, code: '34713006' }], '2025-01-14')), nr('b', cond(icdWithSnomed, '2025-01-14'))]);
    expect(r.merges).toHaveLength(1);
  });

  it('keeps two episodes (different onset) apart', () => {
    expect(dedupeConditions([nr('a', cond([{ system: SNOMED, code: '34713006' }], '2025-01-14')), nr('b', cond(icdWithSnomed, '2026-05-02'))]).merges).toEqual([]);
  });

  const CLINICAL = 'http://terminology.hl7.org/CodeSystem/condition-clinical';
  const VERIFICATION = 'http://terminology.hl7.org/CodeSystem/condition-ver-status';
  const clinical = (code: string): Condition['clinicalStatus'] => ({ coding: [{ system: CLINICAL, code }] });
  const verification = (code: string): Condition['verificationStatus'] => ({ coding: [{ system: VERIFICATION, code }] });
  const ironDeficiency = [{ system: SNOMED, code: '87522002' }];
  const d509WithSnomed = [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'D50.9' }, ...ironDeficiency];
  const statusOf = (r: NormalizedResource): string | undefined => (r.resource as Condition).clinicalStatus?.coding?.[0]?.code;

  it('merges the same diagnosis with the same clinical and verification status, codings unioned', () => {
    const a = nr('a', cond([{ system: SNOMED, code: '34713006' }], '2025-01-14', { clinicalStatus: clinical('active'), verificationStatus: verification('confirmed') }));
    const b = nr('b', cond(icdWithSnomed, '2025-01-14', { clinicalStatus: clinical('active'), verificationStatus: verification('confirmed') }));
    const r = dedupeConditions([a, b]);
    expect(r.merges).toHaveLength(1);
    expect((r.survivors[0]?.resource as Condition).code?.coding?.map((c) => c.code).sort()).toEqual(['34713006', 'E55.9']);
  });

  it('keeps a problem one team resolved and the other team still has active apart, each with its own status', () => {
    const resolved = nr('team-a', cond(ironDeficiency, '2025-01-14', {
      clinicalStatus: clinical('resolved'), verificationStatus: verification('confirmed'), abatementDateTime: '2025-06-30',
      note: [{ text: 'ferritin normal after 3 months of iron' }], recordedDate: '2025-01-14',
    }));
    const active = nr('team-b', cond(d509WithSnomed, '2025-01-14', { clinicalStatus: clinical('active'), verificationStatus: verification('confirmed') }));
    const r = dedupeConditions([resolved, active]);
    expect(r.merges).toEqual([]);
    expect(r.survivors.map(statusOf).sort()).toEqual(['active', 'resolved']);
    const stillActive = r.survivors.find((s) => statusOf(s) === 'active')?.resource as Condition;
    expect(stillActive.abatementDateTime).toBeUndefined();
  });

  it('keeps a provisional and a confirmed diagnosis apart (verification status is a modifier element too)', () => {
    const a = nr('a', cond(ironDeficiency, '2025-01-14', { clinicalStatus: clinical('active'), verificationStatus: verification('provisional') }));
    const b = nr('b', cond(d509WithSnomed, '2025-01-14', { clinicalStatus: clinical('active'), verificationStatus: verification('confirmed') }));
    expect(dedupeConditions([a, b]).merges).toEqual([]);
  });

  it('never joins an active and a resolved record through one without a status, in any input order', () => {
    const make = (): NormalizedResource[] => [
      nr('team-a', cond(ironDeficiency, '2025-01-14', { clinicalStatus: clinical('resolved'), abatementDateTime: '2025-06-30' })),
      nr('team-b', cond(d509WithSnomed, '2025-01-14', { clinicalStatus: clinical('active') })),
      nr('team-c', cond(ironDeficiency, '2025-01-14')),
    ];
    for (const order of [[0, 1, 2], [2, 0, 1], [2, 1, 0], [1, 2, 0]]) {
      const items = make();
      const r = dedupeConditions(order.map((i) => items[i] as NormalizedResource));
      expect(r.survivors).toHaveLength(2);
      expect(r.survivors.map(statusOf).sort()).toEqual(['active', 'resolved']);
    }
  });

  it('does not put an abatement on an active survivor (con-4)', () => {
    const active = nr('a', cond([{ system: SNOMED, code: '34713006' }], '2025-01-14', {
      clinicalStatus: clinical('active'),
      note: [{ text: 'a' }], category: [{ coding: [{ system: 'x', code: 'problem-list-item' }] }], recordedDate: '2025-01-14',
    }));
    const noStatus = nr('b', cond(icdWithSnomed, '2025-01-14', { abatementDateTime: '2025-04-01' }));
    const merged = dedupeConditions([active, noStatus]).survivors[0]?.resource as Condition;
    expect(merged.clinicalStatus?.coding?.[0]?.code).toBe('active');
    expect(merged.abatementDateTime).toBeUndefined();
    expect(merged.code?.coding?.map((c) => c.code)).toEqual(['34713006', 'E55.9']);
  });
});

describe('medicationrequest:rxnorm-authored', () => {
  it('matches an inline RxNorm code with one reached through medicationReference', () => {
    const med = nr<Medication>('a', { resourceType: 'Medication', code: { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '2418' }] } });
    const viaRef = nr<MedicationRequest>('a', {
      resourceType: 'MedicationRequest', status: 'active', intent: 'order', subject: { reference: PATIENT }, authoredOn: '2023-09-21T11:00:00-06:00', medicationReference: { reference: med.fullUrl },
    });
    const inline = nr<MedicationRequest>('b', {
      resourceType: 'MedicationRequest', status: 'active', intent: 'order', subject: { reference: PATIENT }, authoredOn: '2023-09-21',
      medicationCodeableConcept: { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '2418' }] },
    });
    const r = dedupeMedicationRequests([med, viaRef, inline]);
    expect(r.merges).toHaveLength(1);
    const survivor = r.survivors.find((s) => s.resource.resourceType === 'MedicationRequest')?.resource as MedicationRequest;
    expect(survivor.medicationReference !== undefined && survivor.medicationCodeableConcept !== undefined).toBe(false); // one medication[x]
  });
});

describe('documentreference:content and diagnosticreport:presented-form', () => {
  const pdf = Buffer.from('%PDF-1.7 letter');
  const sha1 = createHash('sha1').update(pdf).digest('base64');
  const doc = (attachment: DocumentReference['content'][number]['attachment'], extra: Partial<DocumentReference> = {}): DocumentReference => ({
    resourceType: 'DocumentReference', status: 'current', subject: { reference: PATIENT }, content: [{ attachment }], ...extra,
  });

  it('matches inline data (hash computed) with a URL attachment whose hash is declared', () => {
    const inline = nr('a', doc({ contentType: 'application/pdf', data: pdf.toString('base64') }));
    const byUrl = nr('b', doc({ contentType: 'application/pdf', url: 'urn:uuid:00000000-0000-5000-8000-0000000000ff', hash: sha1 }));
    expect(dedupeDocumentReferences([inline, byUrl]).merges).toHaveLength(1);
  });

  it('accepts a hex SHA-1 as declared hash', () => {
    const hex = createHash('sha1').update(pdf).digest('hex');
    expect(dedupeDocumentReferences([nr('a', doc({ data: pdf.toString('base64') })), nr('b', doc({ url: 'https://x/b', hash: hex }))]).merges).toHaveLength(1);
  });

  it('keeps different bytes apart even with the same identifier and type', () => {
    const id = [{ system: 'http://a/doc', value: 'DOC1' }];
    const a = nr('a', doc({ data: pdf.toString('base64') }, { identifier: id }));
    const b = nr('b', doc({ data: Buffer.from('%PDF-1.7 other').toString('base64') }, { identifier: id }));
    expect(dedupeDocumentReferences([a, b]).merges).toEqual([]);
  });

  it('falls back to URL, then identifier, when there is no hash', () => {
    const same = (u: string): DocumentReference['content'][number]['attachment'] => ({ url: u });
    expect(dedupeDocumentReferences([nr('a', doc(same('https://x/1'))), nr('b', doc(same('https://x/1')))]).merges).toHaveLength(1);
    expect(dedupeDocumentReferences([nr('a', doc(same('Binary/1'))), nr('b', doc(same('Binary/1')))]).merges).toEqual([]); // relative: per source
    const id = [{ system: 'http://a/doc', value: 'DOC9' }];
    expect(dedupeDocumentReferences([nr('a', doc({ contentType: 'text/plain' }, { identifier: id })), nr('b', doc({ contentType: 'text/plain' }, { identifier: id }))]).merges).toHaveLength(1);
  });

  describe('a report matched only by a shared accession', () => {
    const accession = [{ system: 'http://lab.example.org/accession', value: 'SP26-0412' }];
    const biopsy = (status: DiagnosticReport['status'], conclusion: string | undefined): DiagnosticReport => ({
      resourceType: 'DiagnosticReport', status, code: { text: 'Duodenal biopsy pathology' }, subject: { reference: PATIENT },
      identifier: accession, effectiveDateTime: '2026-03-02', ...(conclusion === undefined ? {} : { conclusion }),
    });
    const conclusions = (r: { survivors: NormalizedResource[] }): (string | undefined)[] =>
      r.survivors.map((s) => (s.resource as DiagnosticReport).conclusion).sort();

    it('keeps the final report and the amended one that corrects it apart, both conclusions shown', () => {
      const original = nr('team-a', { ...biopsy('final', 'No villous atrophy'), note: [{ text: 'signed out' }], performer: [{ display: 'Pathology' }] });
      const amended = nr('team-b', biopsy('amended', 'Amended: Marsh 3a villous atrophy'));
      const r = dedupeDiagnosticReports([original, amended]);
      expect(r.merges).toEqual([]);
      expect(conclusions(r)).toEqual(['Amended: Marsh 3a villous atrophy', 'No villous atrophy']);
      expect(r.survivors.map((x) => (x.resource as DiagnosticReport).status).sort()).toEqual(['amended', 'final']);
    });

    it('keeps apart reports of one status whose conclusions differ, or of which only one states one', () => {
      expect(dedupeDiagnosticReports([nr('a', biopsy('final', 'No villous atrophy')), nr('b', biopsy('final', 'Marsh 3a villous atrophy'))]).merges).toEqual([]);
      expect(dedupeDiagnosticReports([nr('a', biopsy('final', 'No villous atrophy')), nr('b', biopsy('final', undefined))]).merges).toEqual([]);
    });

    it('never lets a third source\u2019s report, matched by its PDF, join an accession-only match with another claim', () => {
      const withPdf = (status: DiagnosticReport['status'], conclusion: string): DiagnosticReport => ({ ...biopsy(status, conclusion), presentedForm: [{ contentType: 'application/pdf', data: pdf.toString('base64') }] });
      const original = (): NormalizedResource => nr('team-a', withPdf('final', 'No villous atrophy'));
      const accessionOnly = (): NormalizedResource => nr('team-b', biopsy('final', 'No villous atrophy'));
      const amendedSamePdf = (): NormalizedResource => nr('team-c', withPdf('amended', 'Amended: Marsh 3a villous atrophy'));
      for (const order of [[original, accessionOnly, amendedSamePdf], [amendedSamePdf, original, accessionOnly], [accessionOnly, amendedSamePdf, original]]) {
        const r = dedupeDiagnosticReports(order.map((make) => make()));
        expect(r.survivors).toHaveLength(2);
        expect(new Set(conclusions(r))).toEqual(new Set(['No villous atrophy', 'Amended: Marsh 3a villous atrophy']));
        expect(r.merges).toHaveLength(1);
      }
      // Nor do the two PDF copies merge on their own: the same bytes do not vouch for the status or conclusion.
      expect(dedupeDiagnosticReports([original(), amendedSamePdf()]).merges).toEqual([]);
    });

    it('still merges the same report (same status and conclusion, spacing and case aside)', () => {
      const r = dedupeDiagnosticReports([nr('a', biopsy('final', 'No villous atrophy')), nr('b', biopsy('final', '  no villous\n atrophy'))]);
      expect(r.merges).toHaveLength(1);
    });
  });

  it('merges reports with the same presentedForm and unions their results', () => {
    const o1 = nr('a', obs([{ system: LOINC, code: '1-1' }], '2026-01-01T00:00:00Z', q(1, 'mg')));
    const o2 = nr('b', obs([{ system: LOINC, code: '2-2' }], '2026-01-01T00:00:00Z', q(2, 'mg')));
    const dr = (result: string, s: string): NormalizedResource => nr<DiagnosticReport>(s, {
      resourceType: 'DiagnosticReport', status: 'final', code: { text: 'Pathology' }, presentedForm: [{ data: pdf.toString('base64') }], result: [{ reference: result }],
    });
    const r = dedupeDiagnosticReports([o1, o2, dr(o1.fullUrl, 'a'), dr(o2.fullUrl, 'b')]);
    expect(r.merges).toHaveLength(1);
    const report = r.survivors.find((s) => s.resource.resourceType === 'DiagnosticReport')?.resource as DiagnosticReport;
    expect(report.result?.map((x) => x.reference).sort()).toEqual([o1.fullUrl, o2.fullUrl].sort());
  });
});

describe('imagingstudy:study-uid', () => {
  const study = (uid: string, endpoint: string, extra: Partial<ImagingStudy> = {}): ImagingStudy => ({
    resourceType: 'ImagingStudy', status: 'available', subject: { reference: PATIENT }, identifier: [{ system: 'urn:dicom:uid', value: `urn:oid:${uid}` }],
    endpoint: [{ reference: endpoint }], series: [{ uid: '2.25.9', modality: { system: 'x', code: 'DX' }, endpoint: [{ reference: endpoint }] }], ...extra,
  });

  it('merges the same StudyInstanceUID and keeps both archives\u2019 endpoints', () => {
    const r = dedupeImagingStudies([nr('a', study('2.25.1', 'urn:uuid:e-a')), nr('b', study('2.25.1', 'urn:uuid:e-b'))]);
    const s = r.survivors[0]?.resource as ImagingStudy;
    expect(s.endpoint?.map((e) => e.reference).sort()).toEqual(['urn:uuid:e-a', 'urn:uuid:e-b']);
    expect(s.series?.[0]?.endpoint?.map((e) => e.reference).sort()).toEqual(['urn:uuid:e-a', 'urn:uuid:e-b']);
  });

  it('reads the StudyInstanceUID sent as a URI (urn:ietf:rfc:3986, urn:oid: value, as Synthea sends it) as the same study', () => {
    const asUri = study('2.25.1', 'urn:uuid:e-b', { identifier: [{ system: 'urn:ietf:rfc:3986', value: 'urn:oid:2.25.1' }] });
    const r = dedupeImagingStudies([nr('a', study('2.25.1', 'urn:uuid:e-a')), nr('b', asUri)]);
    expect(r.merges).toEqual([expect.objectContaining({ rule: 'imagingstudy:study-uid' })]);
    expect(studyUids(asUri)).toEqual(['2.25.1']);
    // A URI identifier that is not an OID (an accession as a URL) is not a study UID; nor another system's OID-looking value.
    expect(studyUids(study('2.25.1', 'x', { identifier: [{ system: 'urn:ietf:rfc:3986', value: 'https://pacs.example.org/acc/1' }, { system: 'https://example.org/ids', value: 'urn:oid:2.25.1' }] }))).toEqual([]);
  });

  it('keeps two studies of the same procedure apart', () => {
    expect(dedupeImagingStudies([nr('a', study('2.25.1', 'urn:uuid:e-a')), nr('b', study('2.25.2', 'urn:uuid:e-b'))]).merges).toEqual([]);
  });

  it("keeps the family's uploaded instances in a series the EHR lists without them, and the larger counts", () => {
    // The EHR: the study and its series with counts, no instances listed. The upload: 3 instances of that series.
    const pulled = study('2.25.1', 'urn:uuid:e-a', { numberOfSeries: 1, numberOfInstances: 120, series: [{ uid: '2.25.9', modality: { system: 'x', code: 'CT' }, numberOfInstances: 120, endpoint: [{ reference: 'urn:uuid:e-a' }] }] });
    const instance = (n: number) => ({ uid: `2.25.9.${n}`, sopClass: { system: 'urn:ietf:rfc:3986', code: 'urn:oid:1.2.840.10008.5.1.4.1.1.2' } });
    const uploaded = study('2.25.1', 'urn:uuid:e-b', { numberOfSeries: 1, numberOfInstances: 3, series: [{ uid: '2.25.9', modality: { system: 'x', code: 'CT' }, numberOfInstances: 3, instance: [1, 2, 3].map(instance) }] });
    for (const order of [[nr('a', pulled), nr('b', uploaded)], [nr('a', uploaded), nr('b', pulled)]]) {
      const s = dedupeImagingStudies(order).survivors[0]?.resource as ImagingStudy;
      expect(s.series).toHaveLength(1);
      expect(s.series?.[0]?.instance?.map((i) => i.uid)).toEqual(['2.25.9.1', '2.25.9.2', '2.25.9.3']);
      expect(s.series?.[0]?.numberOfInstances).toBe(120);
      expect(s).toMatchObject({ numberOfSeries: 1, numberOfInstances: 120 });
    }
  });
});

describe('immunization, allergy, procedure, encounter', () => {
  it('immunization: same CVX and date; the primary-source record survives', () => {
    const imm = (primarySource: boolean, date: string): Immunization => ({
      resourceType: 'Immunization', status: 'completed', patient: { reference: PATIENT }, vaccineCode: { coding: [{ system: 'http://hl7.org/fhir/sid/cvx', code: '140' }] },
      occurrenceDateTime: date, primarySource, ...(primarySource ? {} : { reportOrigin: { text: 'registry' } }),
    });
    const reported = nr('a', imm(false, '2025-10-08'));
    const primary = nr('b', imm(true, '2025-10-08T10:00:00-06:00'));
    const r = dedupeImmunizations([reported, primary, nr('c', imm(true, '2024-10-08'))]);
    expect(r.merges).toHaveLength(1);
    expect(r.merges[0]?.survivor).toBe(primary.fullUrl);
    expect((r.survivors.find((s) => s.fullUrl === primary.fullUrl)?.resource as Immunization).reportOrigin).toBeUndefined();
  });

  it('allergy: same substance code', () => {
    const allergy = (code: string): AllergyIntolerance => ({ resourceType: 'AllergyIntolerance', patient: { reference: PATIENT }, code: { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code }] } });
    expect(dedupeAllergyIntolerances([nr('a', allergy('723')), nr('b', allergy('723')), nr('b', allergy('7980'))]).merges).toHaveLength(1);
  });

  it('procedure: shared code and performed date; not-done stays apart', () => {
    const proc = (status: Procedure['status'], when: string): Procedure => ({
      resourceType: 'Procedure', status, subject: { reference: PATIENT }, code: { coding: [{ system: SNOMED, code: '173171007' }] }, performedPeriod: { start: when },
    });
    expect(dedupeProcedures([nr('a', proc('completed', '2025-02-20T08:05:00-07:00')), nr('b', proc('completed', '2025-02-20T15:05:00Z'))]).merges).toHaveLength(1);
    expect(dedupeProcedures([nr('a', proc('completed', '2025-02-20')), nr('b', proc('not-done', '2025-02-20'))]).merges).toEqual([]);
  });

  it('encounter: identifier, else identical period + class; a conflicting identifier keeps visits apart', () => {
    const enc = (start: string, end: string, identifier?: string): Encounter => ({
      resourceType: 'Encounter', status: 'finished', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
      subject: { reference: PATIENT }, period: { start, end }, ...(identifier ? { identifier: [{ system: 'http://a/enc', value: identifier }] } : {}),
    });
    expect(dedupeEncounters([nr('a', enc('2025-01-01T10:00:00Z', '2025-01-01T11:00:00Z', 'V1')), nr('b', enc('2025-03-01T10:00:00Z', '2025-03-01T11:00:00Z', 'V1'))]).merges).toHaveLength(1);
    expect(dedupeEncounters([nr('a', enc('2025-01-01T03:00:00-07:00', '2025-01-01T04:00:00-07:00')), nr('b', enc('2025-01-01T10:00:00Z', '2025-01-01T11:00:00Z'))]).merges).toHaveLength(1);
    expect(dedupeEncounters([nr('a', enc('2025-01-01T10:00:00Z', '2025-01-01T11:00:00Z', 'V1')), nr('a', enc('2025-01-01T10:00:00Z', '2025-01-01T11:00:00Z', 'V2'))]).merges).toEqual([]);
    expect(dedupeEncounters([nr('a', enc('2025-01-01T10:00:00Z', '2025-01-01T11:00:00Z')), nr('b', enc('2025-01-01T10:00:00Z', '2025-01-01T12:00:00Z'))]).merges).toEqual([]);
  });
});

describe('engine', () => {
  const hba1c = [{ system: LOINC, code: '4548-4' }];

  it('chooses the survivor by completeness, then smallest fullUrl, whatever the input order', () => {
    const lean = nr('b', obs(hba1c, '2026-01-01T00:00:00Z', q(8, '%')), '00000000-0000-5000-8000-0000000000a1');
    const rich = nr('a', obs(hba1c, '2026-01-01T00:00:00Z', q(8, '%'), { issued: '2026-01-01T01:00:00Z', note: [{ text: 'fasting' }] }), '00000000-0000-5000-8000-0000000000b2');
    expect(dedupe([lean, rich]).merges[0]?.survivor).toBe(rich.fullUrl);
    expect(dedupe([rich, lean]).merges[0]?.survivor).toBe(rich.fullUrl);
    const twin = nr('c', obs(hba1c, '2026-01-01T00:00:00Z', q(8, '%')), '00000000-0000-5000-8000-0000000000a0');
    expect(dedupe([lean, twin]).merges[0]?.survivor).toBe(twin.fullUrl);
    expect(JSON.stringify(dedupe([twin, lean]))).toBe(JSON.stringify(dedupe([twin, lean])));
  });

  it('redirects references to merged-away resources and collapses repeats; never mutates the input', () => {
    const a = nr('a', obs(hba1c, '2026-01-01T00:00:00Z', q(8, '%'), { note: [{ text: 'x' }] }));
    const b = nr('b', obs(hba1c, '2026-01-01T00:00:00Z', q(8, '%')));
    const report = nr<DiagnosticReport>('c', { resourceType: 'DiagnosticReport', status: 'final', code: { text: 'x' }, result: [{ reference: a.fullUrl }, { reference: b.fullUrl }] });
    const before = JSON.stringify([a, b, report]);
    const r = dedupe([a, b, report]);
    expect(JSON.stringify([a, b, report])).toBe(before);
    const dr = r.resources.find((x) => x.fullUrl === report.fullUrl)?.resource as DiagnosticReport;
    expect(dr.result).toEqual([{ reference: a.fullUrl }]);
    expect(r.resources.find((x) => x.fullUrl === a.fullUrl)).toBeDefined();
  });

  it('returns untouched resources as the same objects', () => {
    const a = nr('a', obs(hba1c, '2026-01-01T00:00:00Z', q(8, '%')));
    const other = nr('a', obs([{ system: LOINC, code: '718-7' }], '2026-01-01T00:00:00Z', q(12, 'g/dL')));
    const r = dedupe([a, nr('b', obs(hba1c, '2026-01-01T00:00:00Z', q(8, '%'))), other]);
    expect(r.resources.find((x) => x.fullUrl === other.fullUrl)).toBe(other);
  });

  it('refuses a rule that would merge Patients', () => {
    expect(() => runRules([], [{ name: 'patient:x', resourceType: 'Patient', approach: '', blocking: () => ({ keys: () => [] }) }])).toThrow(/never merged/);
  });
});
