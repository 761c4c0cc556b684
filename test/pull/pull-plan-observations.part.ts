import type { EndpointCapabilities } from '../../src/endpoints/capabilities';
import { ALL_OBSERVATIONS_SEARCH, OBSERVATION_SEARCHES } from '../../src/pull/observation-categories';
import { coveredRefusals, planPull, PULL_PAGE_SIZE, whenRefused, type PlannedQuery } from '../../src/pull/pull-plan';

/**
 * The Observation queries a pull plans without `Patient/$everything`: by category (five queries) where
 * the server declares `category` for Observation or lists no Observation search parameter; one query
 * without `category` where it lists them without it (a server may refuse or ignore an undeclared
 * parameter, https://hl7.org/fhir/R4/search.html#errors). `patient`/`subject` and `_lastUpdated` follow
 * the declared parameters for that query as for the others.
 */

/** A server without `$everything` declaring `observation` as Observation's search parameters (none listed: `[]`). */
const declaring = (observation: string[]): EndpointCapabilities => ({
  resources: {
    Patient: { searchParams: [], interactions: ['search-type'], operations: [] },
    Observation: { searchParams: observation, interactions: ['search-type'], operations: [] },
  },
  patientEverything: false,
  systemInteractions: [],
});

const observationQueries = (queries: readonly PlannedQuery[]): PlannedQuery[] => queries.filter((q) => q.resourceType === 'Observation');
const FIVE = OBSERVATION_SEARCHES.map((s) => s.key);

it('asks a server declaring Observation parameters without category once, without category', () => {
  const queries = observationQueries(planPull({ patientId: 'p1', capabilities: declaring(['patient', 'code', 'date']), types: ['Observation'] }));
  expect(queries).toEqual([{ key: 'Observation:all', resourceType: 'Observation', path: 'Observation', params: { patient: 'Patient/p1', _count: String(PULL_PAGE_SIZE) } }]);
});

it('asks by category where the server declares category, lists no Observation parameter, or is not known', () => {
  for (const capabilities of [declaring(['patient', 'category', 'code']), declaring([]), null]) {
    const queries = observationQueries(planPull({ patientId: 'p1', capabilities }));
    expect(queries.map((q) => q.key)).toEqual(FIVE);
    expect(queries.map((q) => q.params)).toEqual(OBSERVATION_SEARCHES.map((s) => ({ patient: 'Patient/p1', ...s.params, _count: String(PULL_PAGE_SIZE) })));
  }
});

it('names the child and bounds the single query as the declared parameters say, by its own key', () => {
  const bounds = new Map([['Observation:all', '2026-01-02T00:00:00.000Z'], ['Observation:laboratory', '2025-01-01T00:00:00.000Z']]);
  const sinceOf = (key: string): string | undefined => bounds.get(key);
  // `subject` without `patient`, `_lastUpdated` declared: bounded by its own last completion, not the laboratory query's.
  const bySubject = observationQueries(planPull({ patientId: 'p1', capabilities: declaring(['subject', '_lastUpdated']), sinceOf }));
  expect(bySubject.map((q) => q.params)).toEqual([{ subject: 'Patient/p1', _count: String(PULL_PAGE_SIZE), _lastUpdated: 'gt2026-01-02T00:00:00.000Z' }]);
  // `_lastUpdated` not declared: in full.
  const inFull = observationQueries(planPull({ patientId: 'p1', capabilities: declaring(['patient']), since: '2026-01-01T00:00:00Z' }));
  expect(inFull.map((q) => q.params)).toEqual([{ patient: 'Patient/p1', _count: String(PULL_PAGE_SIZE) }]);
  // Never completed before (the server used to be asked by category): in full.
  const first = observationQueries(planPull({ patientId: 'p1', capabilities: declaring(['patient', '_lastUpdated']), sinceOf: (key) => (key === 'Observation:all' ? undefined : '2026-01-01T00:00:00.000Z') }));
  expect(first.map((q) => q.params)).toEqual([{ patient: 'Patient/p1', _count: String(PULL_PAGE_SIZE) }]);
});

it('keeps the single query apart from the refusable ones', () => {
  expect(FIVE).not.toContain(ALL_OBSERVATIONS_SEARCH.key);
  expect(whenRefused(ALL_OBSERVATIONS_SEARCH.key)).toBeUndefined();
  expect(coveredRefusals().map((r) => [r.key, r.coveredBy])).toEqual([['Observation:no-category', 'Observation:unlisted-categories']]);
});
