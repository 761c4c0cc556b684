import { scanSearchPage } from '../../src/fhir';
import { missingIncludes } from '../../src/pull/included-resources';
import { pageEntries } from '../../src/pull/page-resources';

/**
 * What a page's `_include` should have brought and the page does not hold (https://hl7.org/fhir/R4/search.html#include):
 * the references of its matches along the include's search parameter, to the source's own server only.
 */

const BASE = 'https://ehr.example.org/fhir';

function page(entries: readonly unknown[]): { body: Buffer; entries: ReturnType<typeof pageEntries> } {
  const body = Buffer.from(JSON.stringify({ resourceType: 'Bundle', type: 'searchset', entry: entries }));
  return { body, entries: pageEntries(scanSearchPage(body, body.length, BASE)) };
}

const study = (id: string, endpoint: readonly string[], seriesEndpoint: readonly string[] = []): unknown => ({
  resource: {
    resourceType: 'ImagingStudy',
    id,
    status: 'available',
    subject: { reference: 'Patient/p' },
    endpoint: endpoint.map((reference) => ({ reference })),
    series: [{ uid: '1.2.3', modality: { code: 'CT' }, endpoint: seriesEndpoint.map((reference) => ({ reference })) }],
  },
  search: { mode: 'match' },
});

it('finds each Endpoint of the matches (top level and per series) on the same server, once, that the page lacks', () => {
  const { body, entries } = page([
    study('s1', ['Endpoint/e1', `${BASE}/Endpoint/e2/_history/3`], ['Endpoint/e3']),
    study('s2', ['Endpoint/e1', 'https://other.example.org/fhir/Endpoint/x', '#contained', 'Endpoint?identifier=a|b', 'Endpoint/e4']),
    { resource: { resourceType: 'Endpoint', id: 'e4', status: 'active' }, search: { mode: 'include' } },
  ]);
  expect(missingIncludes('ImagingStudy:endpoint', entries, body, BASE)).toEqual([
    { include: 'ImagingStudy:endpoint', type: 'Endpoint', id: 'e1' },
    { include: 'ImagingStudy:endpoint', type: 'Endpoint', id: 'e2' },
    { include: 'ImagingStudy:endpoint', type: 'Endpoint', id: 'e3' },
  ]);
});

it('finds the referenced Medication of a MedicationRequest, none for one coded inline', () => {
  const { body, entries } = page([
    { resource: { resourceType: 'MedicationRequest', id: 'm1', medicationReference: { reference: 'Medication/med1' } } },
    { resource: { resourceType: 'MedicationRequest', id: 'm2', medicationCodeableConcept: { text: 'amoxicillin' } } },
  ]);
  expect(missingIncludes('MedicationRequest:medication', entries, body, BASE)).toEqual([{ include: 'MedicationRequest:medication', type: 'Medication', id: 'med1' }]);
});

it('finds nothing for a query without an _include of the plan', () => {
  const { body, entries } = page([study('s1', ['Endpoint/e1'])]);
  expect(missingIncludes(undefined, entries, body, BASE)).toEqual([]);
  expect(missingIncludes('ImagingStudy:patient', entries, body, BASE)).toEqual([]);
});
