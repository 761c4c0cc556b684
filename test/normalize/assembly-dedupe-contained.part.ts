/**
 * Contained resources across a merge (audited defect): a duplicate's `#r1` is its own contained
 * resource, not the survivor's. Merging two reports that each contain a different `#r1` keeps both
 * results; a duplicate's `specimen: #sp` copied into a survivor without `contained` brings the
 * Specimen along; the bundle has no dangling `#` reference, whatever the input order.
 * @see https://hl7.org/fhir/R4/references.html#contained
 */
import type { Bundle, DiagnosticReport, FhirResource, Observation, Patient, Specimen } from 'fhir/r4';
import { unresolvedReferences } from '../../src/normalize/bundle';
import { freshLocalId } from '../../src/normalize/dedupe/contained';
import { mergeResources } from '../../src/normalize/dedupe/merge';
import { assemble, fakeNormalize, SOURCE_A, SOURCE_B } from './assembly-support';
import type { SourceInfo } from '../../src/normalize/types';
import { validationErrors } from './normalize-support';

const LOINC = 'http://loinc.org';
const PDF = Buffer.from('%PDF-1.4 the same pathology report').toString('base64');

function result(id: string, code: string, value: number): Observation {
  return { resourceType: 'Observation', id, status: 'final', code: { coding: [{ system: LOINC, code }] }, valueQuantity: { value, unit: 'g/dL' } };
}

function report(id: string, extra: Partial<DiagnosticReport>): DiagnosticReport {
  return { resourceType: 'DiagnosticReport', id, status: 'final', code: { text: 'Pathology' }, subject: { reference: 'Patient/p' }, presentedForm: [{ contentType: 'application/pdf', data: PDF }], ...extra };
}

/** The DiagnosticReports of a bundle. */
function reports(bundle: Bundle): DiagnosticReport[] {
  return (bundle.entry ?? []).map((e) => e.resource).filter((r): r is DiagnosticReport => r?.resourceType === 'DiagnosticReport');
}

/** The contained resource a local reference names, in `container`. */
function resolve(container: DiagnosticReport, reference: string | undefined): FhirResource | undefined {
  return reference?.startsWith('#') ? container.contained?.find((c) => c.id === reference.slice(1)) : undefined;
}

/** The child's Patient at a source. */
function patientAt(source: SourceInfo): Patient {
  return { resourceType: 'Patient', id: source.remotePatientId ?? '', name: [{ family: 'Fixture' }] };
}

/** The subject of a report at a source: the child's Patient there. */
const at = (source: SourceInfo, r: DiagnosticReport): DiagnosticReport => ({ ...r, subject: { reference: `Patient/${source.remotePatientId ?? ''}` } });

/** Assembles team A's and team B's resources (with each team's Patient), in the given order of sources. */
function assembleBoth(a: readonly DiagnosticReport[], b: readonly DiagnosticReport[], bFirst: boolean): Bundle {
  const sources = [
    { info: SOURCE_A, resources: [patientAt(SOURCE_A), ...a.map((r) => at(SOURCE_A, r))] },
    { info: SOURCE_B, resources: [patientAt(SOURCE_B), ...b.map((r) => at(SOURCE_B, r))] },
  ];
  return assemble(fakeNormalize(bFirst ? sources.reverse() : sources)).bundle;
}

describe.each([false, true])('a merge keeps contained resources with what references them (team B first: %s)', (bFirst) => {
  it('keeps two different contained results that share the local id #r1', () => {
    const a = report('dr-a', { contained: [result('r1', '718-7', 12.1)], result: [{ reference: '#r1' }] });
    const b = report('dr-b', { contained: [result('r1', '777-3', 250)], result: [{ reference: '#r1' }] });
    const bundle = assembleBoth([a], [b], bFirst);
    const merged = reports(bundle);
    expect(merged).toHaveLength(1);
    const dr = merged[0] as DiagnosticReport;
    expect(unresolvedReferences(bundle)).toEqual([]);
    const codes = (dr.result ?? []).map((r) => (resolve(dr, r.reference) as Observation | undefined)?.code.coding?.[0]?.code);
    expect(codes.sort()).toEqual(['718-7', '777-3']);
    expect(new Set(dr.contained?.map((c) => c.id)).size).toBe(2);
    expect(validationErrors(dr)).toEqual([]);
  });

  it("copies the duplicate's contained Specimen with its reference into a survivor that contains nothing", () => {
    // Team A's report is more complete: it survives; team B's brings a contained specimen.
    const a = report('dr-a', {
      conclusion: 'Normal', issued: '2026-03-02T10:00:00Z', effectiveDateTime: '2026-03-02T09:00:00Z',
      category: [{ text: 'Pathology' }], identifier: [{ system: 'https://lab.example.org/acc', value: 'A1' }],
    });
    const sp: Specimen = { resourceType: 'Specimen', id: 'sp', type: { text: 'Blood' } };
    const b = report('dr-b', { contained: [sp], specimen: [{ reference: '#sp' }] });
    const bundle = assembleBoth([a], [b], bFirst);
    const dr = reports(bundle)[0] as DiagnosticReport;
    expect(dr.identifier?.[0]?.value).toBe('A1'); // the survivor is team A's
    expect(dr.conclusion).toBe('Normal');
    expect(unresolvedReferences(bundle)).toEqual([]);
    expect(resolve(dr, dr.specimen?.[0]?.reference)).toMatchObject({ resourceType: 'Specimen', type: { text: 'Blood' } });
    expect(validationErrors(dr)).toEqual([]);
  });

  it('keeps one copy of a contained resource both sides hold alike, and both results referring to it', () => {
    const a = report('dr-a', { contained: [result('x', '718-7', 12.1)], result: [{ reference: '#x' }] });
    const b = report('dr-b', { contained: [result('r9', '718-7', 12.1)], result: [{ reference: '#r9' }] });
    const dr = reports(assembleBoth([a], [b], bFirst))[0] as DiagnosticReport;
    expect(dr.contained).toHaveLength(1);
    expect(dr.result).toHaveLength(1);
    expect(resolve(dr, dr.result?.[0]?.reference)).toBeDefined();
  });
});

describe('mergeResources and contained resources', () => {
  const json = (r: DiagnosticReport): FhirResource => r;

  it('brings along a contained resource named only by another adopted one, renaming both out of the way', () => {
    const survivor = report('s', { contained: [result('r1', '718-7', 12.1), { resourceType: 'Specimen', id: 'sp', type: { text: 'Urine' } }], result: [{ reference: '#r1' }], specimen: [{ reference: '#sp' }] });
    const obs: Observation = { ...result('r1', '777-3', 250), specimen: { reference: '#sp' } };
    const duplicate = report('d', { contained: [obs, { resourceType: 'Specimen', id: 'sp', type: { text: 'Blood' } }], result: [{ reference: '#r1' }] });
    const merged = mergeResources(json(survivor), [json(duplicate)]) as DiagnosticReport;
    expect(merged.result?.map((r) => r.reference)).toEqual(['#r1', '#r1-m2']);
    const adopted = resolve(merged, '#r1-m2') as Observation;
    expect(adopted.code.coding?.[0]?.code).toBe('777-3');
    expect((resolve(merged, adopted.specimen?.reference) as Specimen).type?.text).toBe('Blood');
    expect((resolve(merged, '#sp') as Specimen).type?.text).toBe('Urine');
    expect(survivor.contained).toHaveLength(2); // inputs unchanged
  });

  it("never lets a duplicate's dangling #id come to mean the survivor's contained resource", () => {
    const survivor = report('s', { contained: [{ resourceType: 'Specimen', id: 'sp', type: { text: 'Urine' } }], specimen: [{ reference: '#sp' }] });
    const duplicate = report('d', { specimen: [{ reference: '#sp', display: 'Blood' }] });
    const merged = mergeResources(json(survivor), [json(duplicate)]) as DiagnosticReport;
    expect(merged.specimen?.map((s) => s.reference)).toEqual(['#sp', '#sp-m2']);
    expect(merged.contained).toHaveLength(1);
  });

  it('leaves a survivor without contained resources as it was when the duplicate contains none', () => {
    const merged = mergeResources(json(report('s', { result: [{ reference: 'urn:uuid:1' }] })), [json(report('d', { result: [{ reference: 'urn:uuid:2' }] }))]) as DiagnosticReport;
    expect(merged.contained).toBeUndefined();
    expect(merged.result).toHaveLength(2);
  });

  it('makes fresh ids in FHIR id syntax', () => {
    const long = 'a'.repeat(64);
    const id = freshLocalId(long, new Set([`${'a'.repeat(56)}-m2`]));
    expect(id).toBe(`${'a'.repeat(56)}-m3`);
    expect(id).toMatch(/^[A-Za-z0-9\-.]{1,64}$/);
  });
});

describe('unresolvedReferences and malformed contained lists', () => {
  it('reports a local reference whose contained list holds something that is not a resource, without throwing', () => {
    const dr = { ...report('dr', { result: [{ reference: '#x' }] }), contained: [null] } as unknown as DiagnosticReport;
    const bundle: Bundle = { resourceType: 'Bundle', type: 'collection', entry: [{ fullUrl: 'urn:uuid:1', resource: { ...dr, subject: { display: 'child' } } }] };
    expect(unresolvedReferences(bundle)).toEqual([{ entry: 'urn:uuid:1', path: 'result[0].reference', reference: '#x' }]);
  });
});
