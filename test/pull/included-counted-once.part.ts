import { eventually } from '../support/service';
import { startRepullWorld, type RepullWorld } from './repull-support';

/**
 * A search with `_include` (https://hl7.org/fhir/R4/search.html#include) brings, on each page, the
 * resources that page's matches reference: the same Medication or Endpoint comes again on every page
 * whose matches point at it. The raw store keeps it once; the pull's progress counted it once per
 * page, so a case manager read more resources than the EHR has. Each distinct included resource now
 * counts once per query; `expectedMatches` (`Bundle.total`) still counts the matches only.
 */

interface QueryProgress {
  query: string;
  state: string;
  pages: number;
  resources: number;
  included: number;
  expectedMatches: number | null;
  byType: Record<string, number>;
}
interface PullProgress {
  state: string;
  totals: { resources: number; included: number };
  sources: { resourceTypes: QueryProgress[] }[];
}

let world: RepullWorld;

beforeAll(async () => {
  // One match per page: every page carries its match's Medication (or Endpoint) again.
  world = await startRepullWorld(() => Date.now(), { maxCount: 1 });
}, 60_000);
afterAll(async () => {
  await world.stop();
});

it('counts each distinct _included Medication and Endpoint once per query, not once per page', async () => {
  // Searches per type (no $everything): the US Core queries with `_include`.
  const caseId = await world.openCase({ searchPerType: true });
  const { pullId, state } = await world.pull(caseId, { types: ['MedicationRequest', 'ImagingStudy'] });
  expect(state).toBe('complete');

  const cm = await world.svc.token('case_manager');
  const progress = await eventually(
    async () => (await (await world.svc.request('GET', `/api/cases/${caseId}/pulls/${pullId}`, { token: cm })).json()) as PullProgress,
    (p) => p.state === 'complete',
  );
  const queries = progress.sources.flatMap((s) => s.resourceTypes);
  // Care team A: 5 MedicationRequests over 4 Medications (one prescribed twice); 2 ImagingStudies on 1 Endpoint.
  expect(queries.find((q) => q.query === 'MedicationRequest')).toMatchObject({
    state: 'complete', pages: 5, resources: 9, included: 4, expectedMatches: 5, byType: { MedicationRequest: 5, Medication: 4 },
  });
  expect(queries.find((q) => q.query === 'ImagingStudy')).toMatchObject({
    state: 'complete', pages: 2, resources: 3, included: 1, expectedMatches: 2, byType: { ImagingStudy: 2, Endpoint: 1 },
  });
  expect(progress.totals.resources).toBe(queries.reduce((n, q) => n + q.resources, 0));
  expect(progress.totals.included).toBe(5);

  // The raw store keeps each once, and the query's counter equals what it stored.
  const { rows } = await world.svc.service.db.query<{ resource_type: string; n: number }>(
    `SELECT resource_type, count(*)::int AS n FROM raw_resources WHERE pull_id = $1 GROUP BY 1 ORDER BY 1`,
    [pullId],
  );
  expect(Object.fromEntries(rows.map((r) => [r.resource_type, r.n]))).toMatchObject({ MedicationRequest: 5, Medication: 4, ImagingStudy: 2, Endpoint: 1 });
}, 120_000);
