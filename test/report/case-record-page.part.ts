/**
 * The case record page drawn from a Composition as assembly writes it (`buildComposition`), so the
 * page is tested on the narrative it really gets.
 */
import type { FhirResource, Patient } from 'fhir/r4';
import { buildDocumentBundle } from '../../src/normalize/bundle';
import { buildComposition } from '../../src/normalize/composition';
import type { NormalizedResource, SourceInfo } from '../../src/normalize/types';
import { caseRecordHtml } from '../../src/report/case-record-html';

const OPTIONS = { bundleId: 'b-1', timestamp: '2027-03-02T23:30:00Z' };
const SUBJECT = 'urn:uuid:10000000-0000-5000-8000-000000000001';
const SOURCE: SourceInfo = { sourceId: 'src-1', baseUrl: 'https://ehr.example.org/fhir/', name: 'Pueblo Pediatrics', origin: 'local-ehr', pullIds: ['p1'] };

const patient: NormalizedResource = {
  key: 'case|Patient|c1', fullUrl: SUBJECT, sourceId: 'case', origin: 'family-upload',
  resource: { resourceType: 'Patient', id: SUBJECT.slice(9), name: [{ given: ['Ana'], family: 'Ruiz' }], birthDate: '2017-04-22' } satisfies Patient,
};

function item(n: number, resource: FhirResource): NormalizedResource {
  const id = `20000000-0000-5000-8000-00000000000${n}`;
  return { key: `${SOURCE.sourceId}|${resource.resourceType}|${id}`, fullUrl: `urn:uuid:${id}`, sourceId: SOURCE.sourceId, origin: 'local-ehr', resource: { ...resource, id } as FhirResource };
}

/** The page of a bundle assembled from `resources`. */
function page(resources: NormalizedResource[]): string {
  const all = [patient, ...resources];
  const composition = buildComposition({ subject: SUBJECT, resources: all, options: OPTIONS, sources: [SOURCE] });
  const bundle = buildDocumentBundle({ composition, resources: all, provenances: [], options: OPTIONS });
  return caseRecordHtml({ caseId: 'case-1', version: 3, assembledAt: new Date(OPTIONS.timestamp), bundle, timeZone: 'America/New_York' }).join('');
}

const sectionOf = (html: string, title: string): string => {
  const start = html.indexOf(`<h2>${title}`);
  return html.slice(start, html.indexOf('</section>', start));
};

it('lists a section whose records merely say "onset = …" or "javascript:" as a list, not as escaped markup', () => {
  const html = page([
    item(1, { resourceType: 'Observation', status: 'final', code: { text: 'Seizure log' }, subject: { reference: SUBJECT }, effectiveDateTime: '2025-10-14', valueString: 'onset = 2 min after waking' }),
    item(2, { resourceType: 'Observation', status: 'final', code: { text: 'Parent note' }, subject: { reference: SUBJECT }, effectiveDateTime: '2025-10-13', valueString: 'portal error "javascript: void" <script> shown' }),
  ]);
  const results = sectionOf(html, 'Results');
  expect(results).not.toContain('<pre>');
  expect(results).toContain('<li>2025-10-14 — Seizure log — onset = 2 min after waking');
  expect(results).toContain('Parent note — portal error &quot;javascript: void&quot; &lt;script&gt; shown');
  expect(html).not.toContain('<script');
});
