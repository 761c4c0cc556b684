/**
 * The search index's fast path (plain JavaScript path walking instead of FHIRPath) must give the
 * same reference values as Medplum's FHIRPath, and a superset of its token values, on real data.
 * Also: bare-id reference searches (`patient=123`) are normalized to `Patient/123`.
 */
import type { Resource } from '@medplum/fhirtypes';
import { getSearchParameter, getSearchParameters, loadFhirDefinitions } from '../../src/sandbox/fhir-definitions';
import { compilePathExtractor } from '../../src/sandbox/search/path-extractor';
import { normalizeReferenceSearchValue } from '../../src/sandbox/search/reference-values';
import { medplumSearchValues, searchValueFunction } from '../../src/sandbox/search/search-values';
import { publicDataFiles, readBundle } from './support/public-data';

beforeAll(() => loadFhirDefinitions());

const resources: Resource[] = [...publicDataFiles('synthea-smart'), ...publicDataFiles('inferno-uscore'), ...publicDataFiles('synthea-hiv').filter((file) => file.includes('Cecelia952'))]
  .flatMap((file) => (readBundle(file).entry ?? []).map((entry) => entry.resource as Resource));

test('the data has about two thousand resources of many types', () => {
  expect(resources.length).toBeGreaterThan(1800);
  expect(new Set(resources.map((resource) => resource.resourceType)).size).toBeGreaterThan(15);
});

test('compiled reference extraction equals Medplum FHIRPath; token extraction is a superset', () => {
  let compared = 0;
  const compiledParams = new Set<string>();
  const mismatches: string[] = [];
  for (const resource of resources) {
    for (const searchParam of Object.values(getSearchParameters(resource.resourceType))) {
      const kind = searchParam.type;
      if ((kind !== 'reference' && kind !== 'token') || !searchParam.expression) {
        continue;
      }
      const extractor = compilePathExtractor(resource.resourceType, searchParam.expression);
      if (!extractor) {
        continue;
      }
      compiledParams.add(`${resource.resourceType}.${searchParam.code}`);
      const fast = searchValueFunction(kind, searchParam.expression, extractor)(resource);
      const medplum = medplumSearchValues(kind, searchParam.expression, resource);
      const same =
        kind === 'reference'
          ? fast.length === medplum.length && medplum.every((value) => fast.includes(value))
          : medplum.every((value) => fast.includes(value));
      if (!same) {
        mismatches.push(`${resource.resourceType}/${resource.id} ${searchParam.code}: fast ${fast.join(',')} medplum ${medplum.join(',')}`);
      }
      compared++;
    }
  }
  expect(mismatches).toEqual([]);
  expect(compared).toBeGreaterThan(20_000);
  for (const param of ['Observation.patient', 'Observation.subject', 'Observation.code', 'Encounter.patient', 'Patient.identifier', 'Organization.identifier', 'DocumentReference.patient']) {
    expect(compiledParams).toContain(param);
  }
});

test('bare ids become Type/id, an OR over all targets when there are several', () => {
  const patient = getSearchParameter('Observation', 'patient');
  const subject = getSearchParameter('Observation', 'subject');
  expect(patient && normalizeReferenceSearchValue(patient, '123')).toBe('Patient/123');
  expect(patient && normalizeReferenceSearchValue(patient, 'Patient/123,456')).toBe('Patient/123,Patient/456');
  expect(subject && normalizeReferenceSearchValue(subject, '123', 'Group')).toBe('Group/123');
  expect(subject && normalizeReferenceSearchValue(subject, '123').split(',')).toEqual(expect.arrayContaining(['Patient/123', 'Group/123']));
  expect(patient && normalizeReferenceSearchValue(patient, 'http://x/fhir/Patient/9', undefined, 'http://x/fhir')).toBe('Patient/9');
});
