import { buildCasePatient, CASE_INTAKE_SOURCE, CASE_SOURCE_ID, casePatientFullUrl } from '../../src/normalize/case-patient';
import { caseFhirIds } from '../../src/cases/fhir-ids';
import { buildPatient } from '../../src/cases/fhir-face';
import { applyOrigin, metaSourceOf, ORIGIN_SYSTEM, originTag } from '../../src/normalize/origin';
import { sampleIntake } from '../support/intake';
import { validationErrors } from './normalize-support';

describe('origin marks', () => {
  it('sets meta.source to the base URL and the origin tag; keeps lastUpdated, profile, security and own tags; drops versionId', () => {
    const resource: Record<string, unknown> = {
      resourceType: 'Observation',
      id: 'x',
      meta: {
        versionId: '7',
        lastUpdated: '2026-04-14T15:10:00Z',
        source: 'http://upstream.example.org',
        profile: ['http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-lab'],
        security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' }],
        tag: [{ system: 'http://example.org/tags', code: 'lab' }, { system: ORIGIN_SYSTEM, code: 'specialist' }],
      },
    };
    applyOrigin(resource, metaSourceOf({ baseUrl: 'https://ehr.example.org/fhir/r4/' }), 'local-ehr');
    expect(resource['meta']).toEqual({
      lastUpdated: '2026-04-14T15:10:00Z',
      profile: ['http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-lab'],
      security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' }],
      source: 'https://ehr.example.org/fhir/r4',
      tag: [{ system: 'http://example.org/tags', code: 'lab' }, originTag('local-ehr')],
    });
  });

  it('creates meta when there is none', () => {
    const resource: Record<string, unknown> = { resourceType: 'Patient', id: 'p' };
    applyOrigin(resource, 'urn:upload:family', 'family-upload');
    expect(resource['meta']).toEqual({ source: 'urn:upload:family', tag: [{ system: ORIGIN_SYSTEM, code: 'family-upload', display: 'Uploaded by the family' }] });
  });
});

describe('case Patient', () => {
  const intake = sampleIntake();

  it('is buildPatient of the case FHIR face, with the same id, linked seealso to each source Patient (sorted)', () => {
    const made = buildCasePatient('case-9', intake, [
      { fullUrl: 'urn:uuid:ffffffff-0000-5000-8000-000000000000', sourceName: 'Team B' },
      { fullUrl: 'urn:uuid:00000000-0000-5000-8000-000000000000', sourceName: 'Team A' },
    ]);
    const face = buildPatient({ caseId: 'case-9', intake, eligible: true, createdAt: new Date() }, caseFhirIds('case-9'));
    expect(made.fullUrl).toBe(casePatientFullUrl('case-9'));
    expect(made.fullUrl).toBe(`urn:uuid:${face.id ?? ''}`);
    expect(made.sourceId).toBe(CASE_SOURCE_ID);
    expect(made.key).toBe('case|Patient|case-9');
    const { meta, link, ...rest } = made.resource;
    expect(rest).toEqual(face);
    expect(meta?.source).toBe(CASE_INTAKE_SOURCE);
    expect(link).toEqual([
      { other: { reference: 'urn:uuid:00000000-0000-5000-8000-000000000000', type: 'Patient', display: 'Patient record at Team A' }, type: 'seealso' },
      { other: { reference: 'urn:uuid:ffffffff-0000-5000-8000-000000000000', type: 'Patient', display: 'Patient record at Team B' }, type: 'seealso' },
    ]);
    expect(validationErrors(made.resource)).toEqual([]);
  });

  it('has no link when no source Patient is known', () => {
    expect(buildCasePatient('case-9', intake, []).resource.link).toBeUndefined();
  });
});
