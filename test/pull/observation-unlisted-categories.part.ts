import type { Observation } from 'fhir/r4';
import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { LISTED_OBSERVATION_CATEGORIES } from '../../src/pull/observation-categories';
import { outcome, sendJson, startTestServer, type TestServer } from '../fhir/support/http-server';
import { fixtureBundle, fixturePatientId } from '../support/fixture-child';
import { eventually, FAST_CLIENT, startTestService, type TestService } from '../support/service';
import { startObservationPull } from './observation-pull-support';

/**
 * A server searched per type is asked for the child's Observations by category code
 * (https://hl7.org/fhir/R4/search.html#token: a token search matches a code the resource has). An
 * Observation whose category carries only a local coding or only text matches none of those codes and
 * has a category (`:missing=true` does not find it): the query `category:not=<every code asked for>`
 * brings it (https://hl7.org/fhir/R4/search.html#modifiers). A server refusing `:not` still answers the
 * other queries, and the pull says what was not asked for.
 */
let svc: TestService;
let teamA: SandboxServer;
const OC = 'http://terminology.hl7.org/CodeSystem/observation-category';
const LOCAL = 'http://ehr.example.org/obs-cat';
/** The seeded Observations' ids, by what their category carries. */
let seeded: Record<'localOnly' | 'labText' | 'otherText' | 'none' | 'laboratory' | 'labAndLocal' | 'labAndLocalCodings', string>;

const observation = (loinc: string, display: string, category?: Observation['category']): Observation => ({
  resourceType: 'Observation',
  status: 'final',
  ...(category ? { category } : {}),
  code: { coding: [{ system: 'http://loinc.org', code: loinc, display }] },
  subject: { reference: `Patient/${fixturePatientId('care-team-a')}` },
  effectiveDateTime: '2026-10-07T10:00:00Z',
  valueString: display,
});

beforeAll(async () => {
  [svc, teamA] = await Promise.all([startTestService({}, FAST_CLIENT), startSandboxServer({ name: 'care-team-a', auth: 'none', paging: 'offset' })]);
  await teamA.load(fixtureBundle('care-team-a'));
  const kinds = ['localOnly', 'labText', 'otherText', 'none', 'laboratory', 'labAndLocal', 'labAndLocalCodings'] as const;
  const loaded = await teamA.load(
    [
      observation('2345-7', 'Glucose', [{ coding: [{ system: LOCAL, code: 'LAB' }] }]),
      observation('2951-2', 'Sodium', [{ text: 'Laboratory' }]),
      observation('2823-3', 'Potassium', [{ text: 'Point-of-care panel' }]),
      observation('2075-0', 'Chloride'),
      observation('1963-8', 'Bicarbonate', [{ coding: [{ system: OC, code: 'laboratory' }] }]),
      observation('3094-0', 'Urea nitrogen', [{ coding: [{ system: OC, code: 'laboratory' }] }, { coding: [{ system: LOCAL, code: 'LAB' }] }]),
      observation('2160-0', 'Creatinine', [{ coding: [{ system: OC, code: 'laboratory' }, { system: LOCAL, code: 'LAB' }] }]),
    ],
    { preserveLastUpdated: false },
  );
  const ids = loaded.ids.Observation ?? [];
  expect(ids).toHaveLength(kinds.length);
  seeded = Object.fromEntries(kinds.map((kind, i) => [kind, ids[i] ?? ''])) as typeof seeded;
}, 60_000);
afterAll(async () => {
  await Promise.all([svc.stop(), teamA.stop()]);
});

/** Care team A behind a proxy answering 400 `not-supported` to searches whose query string matches `refused` (as a server not supporting a modifier does). */
async function refusing(refused: RegExp): Promise<TestServer> {
  const upstream = new URL(teamA.baseUrl).origin;
  return startTestServer(async (req, res) => {
    const url = req.url ?? '/';
    if (refused.test(url)) return sendJson(res, 400, outcome('not-supported'));
    const answer = await fetch(`${upstream}${url}`, { method: req.method, headers: { accept: req.headers.accept ?? 'application/fhir+json' } });
    const body = Buffer.from(await answer.arrayBuffer());
    res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/fhir+json', 'content-length': body.length });
    res.end(body);
  });
}

interface QueryProgress {
  query: string;
  state: string;
  pages: number;
  resources: number;
  expectedMatches: number | null;
  serverMessages: { severity: string; code: string; text: string; pages: number }[];
}

/** Registers `baseUrl` as an endpoint searched per type, opens a case on the fixture child there, pulls its Observations to the end; the pull's Observation queries as the API shows them. */
async function pullObservations(name: string, baseUrl: string): Promise<{ caseId: string; state: string; queries: QueryProgress[] }> {
  const { caseId, pullId, cm } = await startObservationPull(svc, name, baseUrl);
  type Progress = { state: string; sources: { resourceTypes: (QueryProgress & { resourceType: string })[] }[] };
  const pull = await eventually(
    async () => (await (await svc.request('GET', `/api/cases/${caseId}/pulls/${pullId}`, { token: cm })).json()) as Progress,
    (p) => ['complete', 'partial', 'failed'].includes(p.state),
    60_000,
  );
  const queries = (pull.sources[0]?.resourceTypes ?? [])
    .filter((q) => q.resourceType === 'Observation')
    .map(({ query, state, pages, resources, expectedMatches, serverMessages }) => ({ query, state, pages, resources, expectedMatches, serverMessages }))
    .sort((a, b) => (a.query < b.query ? -1 : 1));
  return { caseId, state: pull.state, queries };
}

/** The case's stored Observations: rows per remote id, and the query whose page stored each. */
async function storedObservations(caseId: string): Promise<Map<string, { rows: number; query: string }>> {
  const { rows } = await svc.service.db.query<{ remote_id: string; rows: number; query_key: string }>(
    `SELECT r.remote_id, count(*)::int AS rows, min(t.query_key) AS query_key
       FROM raw_resources r JOIN pull_tasks t ON t.id = r.task_id
      WHERE r.case_id = $1 AND r.resource_type = 'Observation' GROUP BY r.remote_id`,
    [caseId],
  );
  return new Map(rows.map((r) => [r.remote_id, { rows: r.rows, query: r.query_key }]));
}

const KEYS = ['Observation:laboratory', 'Observation:no-category', 'Observation:other-categories', 'Observation:unlisted-categories', 'Observation:vital-signs'];

it('pulls Observations whose category has only a local code or only text, once each, by category:not with every code asked for', async () => {
  const { caseId, state, queries } = await pullObservations('Care team A (local categories)', teamA.baseUrl);
  expect(state).toBe('complete');
  const stored = await storedObservations(caseId);
  // Every seeded Observation reached the raw store, exactly once.
  for (const [kind, id] of Object.entries(seeded)) expect({ kind, stored: stored.get(id)?.rows }).toEqual({ kind, stored: 1 });
  expect([...stored.values()].every((s) => s.rows === 1)).toBe(true);
  // Which query brought each: those of a listed code by its query (a local coding beside it changes nothing);
  // a local code only, or text naming no code, by the :not query. (The sandbox, as Medplum does, also
  // matches a CodeableConcept's text as a token: `{text: "Laboratory"}` comes with the laboratory query.)
  expect(stored.get(seeded.localOnly)?.query).toBe('Observation:unlisted-categories');
  expect(stored.get(seeded.otherText)?.query).toBe('Observation:unlisted-categories');
  expect(stored.get(seeded.labText)?.query).toBe('Observation:laboratory');
  for (const id of [seeded.laboratory, seeded.labAndLocal, seeded.labAndLocalCodings]) expect(stored.get(id)?.query).toBe('Observation:laboratory');
  // What ran, and what each query brought: the :not query the two unlisted ones and the one without a
  // category, which the :missing query brings too (stored once: counted by both queries).
  expect(queries.map((q) => [q.query, q.state])).toEqual(KEYS.map((k) => [k, 'complete']));
  expect(queries.find((q) => q.query === 'Observation:unlisted-categories')).toMatchObject({ resources: 3, expectedMatches: 3, serverMessages: [] });
  expect(queries.find((q) => q.query === 'Observation:no-category')).toMatchObject({ resources: 1, expectedMatches: 1, serverMessages: [] });
  expect(queries.reduce((n, q) => n + q.resources, 0)).toBe(stored.size + 1);
  // One request, every code asked for in one comma list (none left out, none added).
  const asked = teamA.requests().filter((r) => r.target.startsWith('/Observation?') && /category%3Anot=/.test(r.target));
  expect(asked.length).toBeGreaterThan(0);
  for (const r of asked) expect(new URL(r.target, 'http://x').searchParams.getAll('category:not')).toEqual([LISTED_OBSERVATION_CATEGORIES.join(',')]);
  expect(new Set(LISTED_OBSERVATION_CATEGORIES).size).toBe(13);
}, 90_000);

it('says which Observations were not asked for at a server that refuses :not, and still pulls the others (those without a category by :missing)', async () => {
  const strict = await refusing(/category(:|%3A)not/i);
  try {
    const { caseId, state, queries } = await pullObservations('Care team A (no :not)', `${strict.url}${new URL(teamA.baseUrl).pathname}`);
    expect(state).toBe('complete');
    expect(queries.map((q) => [q.query, q.state])).toEqual(KEYS.map((k) => [k, 'complete']));
    expect(queries.find((q) => q.query === 'Observation:unlisted-categories')).toMatchObject({
      pages: 0,
      resources: 0,
      serverMessages: [{ severity: 'warning', code: 'not-supported', text: expect.stringMatching(/^Observations whose category has none of the codes asked for \(only a local code, or only text\) were not asked for: .*category:not.* \(HTTP 400\)$/), pages: 1 }],
    });
    expect(queries.find((q) => q.query === 'Observation:no-category')).toMatchObject({ resources: 1, serverMessages: [] });
    const stored = await storedObservations(caseId);
    for (const kind of ['labText', 'none', 'laboratory', 'labAndLocal', 'labAndLocalCodings'] as const) expect({ kind, rows: stored.get(seeded[kind])?.rows }).toEqual({ kind, rows: 1 });
    // What the message says is missing is missing; the counts add up to what was stored, none twice.
    for (const kind of ['localOnly', 'otherText'] as const) expect({ kind, stored: stored.has(seeded[kind]) }).toEqual({ kind, stored: false });
    expect(queries.reduce((n, q) => n + q.resources, 0)).toBe(stored.size);
    // The source carries what its EHR said.
    const cm = await svc.token('case_manager');
    const sources = (await (await svc.request('GET', `/api/cases/${caseId}/sources`, { token: cm })).json()) as { serverMessages?: { text: string }[] }[];
    expect(JSON.stringify(sources)).toMatch(/category:not/);
  } finally {
    await strict.close();
  }
}, 90_000);

it('pulls the Observations without a category by :not at a server that refuses :missing (as HAPI does by default), once each', async () => {
  const strict = await refusing(/category(:|%3A)missing/i);
  try {
    const { caseId, state, queries } = await pullObservations('Care team A (no :missing)', `${strict.url}${new URL(teamA.baseUrl).pathname}`);
    expect(state).toBe('complete');
    // Said as information: the :not query, answered, brought what the refusal left out (covered-refusals.ts).
    expect(queries.find((q) => q.query === 'Observation:no-category')).toMatchObject({
      pages: 0,
      resources: 0,
      serverMessages: [{ severity: 'information', code: 'not-supported', text: expect.stringMatching(/: none is missing$/) }],
    });
    expect(queries.find((q) => q.query === 'Observation:unlisted-categories')).toMatchObject({ resources: 3, serverMessages: [] });
    const stored = await storedObservations(caseId);
    for (const [kind, id] of Object.entries(seeded)) expect({ kind, rows: stored.get(id)?.rows }).toEqual({ kind, rows: 1 });
    expect(stored.get(seeded.none)?.query).toBe('Observation:unlisted-categories');
    expect(queries.reduce((n, q) => n + q.resources, 0)).toBe(stored.size);
  } finally {
    await strict.close();
  }
}, 90_000);

it('says both at a server that refuses :not and :missing, and pulls the Observations of the codes asked for', async () => {
  const strict = await refusing(/category(:|%3A)(not|missing)/i);
  try {
    const { caseId, state, queries } = await pullObservations('Care team A (neither)', `${strict.url}${new URL(teamA.baseUrl).pathname}`);
    expect(state).toBe('complete');
    // Neither covers the other here: both stay warnings.
    expect(queries.filter((q) => q.serverMessages.length > 0).map((q) => [q.query, q.pages, q.serverMessages.map((m) => `${m.severity} ${m.code}`)])).toEqual([
      ['Observation:no-category', 0, ['warning not-supported']],
      ['Observation:unlisted-categories', 0, ['warning not-supported']],
    ]);
    const stored = await storedObservations(caseId);
    for (const kind of ['labText', 'laboratory', 'labAndLocal', 'labAndLocalCodings'] as const) expect({ kind, rows: stored.get(seeded[kind])?.rows }).toEqual({ kind, rows: 1 });
    for (const kind of ['localOnly', 'otherText', 'none'] as const) expect({ kind, stored: stored.has(seeded[kind]) }).toEqual({ kind, stored: false });
  } finally {
    await strict.close();
  }
}, 90_000);
