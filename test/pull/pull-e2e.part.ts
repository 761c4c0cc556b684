import type { Bundle } from 'fhir/r4';
import { OTHER_OBSERVATION_CATEGORIES } from '../../src/pull/pull-plan';
import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { eventually, FAST_CLIENT, startTestService, type TestService } from '../support/service';
import { makeSmartClient } from '../support/smart-client';
import { intakeFor, JORGE, patientOf, readBundle } from '../support/synthea';

/**
 * A real Synthea child (Jorge, 8) pulled from two care teams with SMART auth: team A offers
 * Patient/$everything with offset paging; team B's /metadata could not be read at registration,
 * so the pull falls back to the US Core searches per type, over HAPI-style token paging.
 */
let svc: TestService;
let teamA: SandboxServer;
let teamB: SandboxServer;
let bundle: Bundle;
let patientIdA: string;
let cm: string;
let admin: string;
let endpointA: string;
let endpointB: string;

interface PullView {
  state: string;
  totals: { resources: number; pages: number; attachmentsFound: number; attachmentsFetched: number; attachmentsFailed: number; expectedMatches: number; tasksWithExpectedMatches: number; tasks: number };
  sources: {
    endpointName: string;
    state: string;
    resourceTypes: { query: string; resourceType: string; state: string; pages: number; resources: number; expectedMatches: number | null; byType: Record<string, number> }[];
  }[];
  failedSources: { endpointName: string }[];
  assembledVersion: number | null;
}

async function registerEndpoint(name: string, server: SandboxServer, clientId: string, privateKeyJwk: object): Promise<string> {
  const res = await svc.request('POST', '/api/endpoints', {
    token: admin,
    body: { name, baseUrl: server.baseUrl, auth: { type: 'smart-backend', clientId, privateKeyJwk }, allowInsecureHttp: true, maxRequestsPerSecond: 500, maxConcurrency: 8 },
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

async function waitForPull(caseId: string, pullId: string): Promise<PullView> {
  return eventually(
    async () => (await (await svc.request('GET', `/api/cases/${caseId}/pulls/${pullId}`, { token: cm })).json()) as PullView,
    (p) => ['complete', 'partial', 'failed'].includes(p.state),
    90_000,
  );
}

/** Resources of each type in the bundle, keeping Observations of the two US Core categories when asked. */
function countsOf(b: Bundle, filter: (r: Record<string, unknown>) => boolean = () => true): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const e of b.entry ?? []) {
    const r = e.resource as unknown as Record<string, unknown>;
    if (!filter(r)) continue;
    counts[String(r.resourceType)] = (counts[String(r.resourceType)] ?? 0) + 1;
  }
  return counts;
}

/** What the US Core searches find: Observations of an observation-category code (laboratory, vital signs, and the others). */
const OBSERVATION_CATEGORIES: ReadonlySet<string> = new Set(['laboratory', 'vital-signs', ...OTHER_OBSERVATION_CATEGORIES]);
const usCoreCategory = (r: Record<string, unknown>): boolean => {
  if (r.resourceType !== 'Observation') return true;
  const codes = ((r.category ?? []) as { coding?: { code?: string }[] }[]).flatMap((c) => c.coding ?? []).map((c) => c.code);
  return codes.some((c) => c !== undefined && OBSERVATION_CATEGORIES.has(c));
};

beforeAll(async () => {
  bundle = readBundle(JORGE);
  const smart = await makeSmartClient('sob-e2e', 'RS384');
  [svc, teamA, teamB] = await Promise.all([
    startTestService({ JOB_LOCK_MS: '5000' }, FAST_CLIENT),
    startSandboxServer({ name: 'care-team-a', auth: 'smart', paging: 'offset', defaultCount: 50, maxCount: 50 }),
    startSandboxServer({ name: 'care-team-b', auth: 'smart', paging: 'token', defaultCount: 40, maxCount: 40 }),
  ]);
  for (const server of [teamA, teamB]) server.registerClient({ clientId: smart.clientId, jwks: smart.publicJwks });
  const loadedA = await teamA.load(bundle);
  await teamB.load(bundle);
  patientIdA = loadedA.ids.Patient?.[0] ?? '';
  admin = await svc.token('admin');
  cm = await svc.token('case_manager', 'cm-e2e');
  endpointA = await registerEndpoint('Care team A', teamA, smart.clientId, smart.privateKeyJwk);
  const viewA = (await (await svc.request('GET', `/api/endpoints/${endpointA}`, { token: admin })).json()) as { capabilitiesError: string | null };
  expect(viewA.capabilitiesError).toBeNull();
  // Every /metadata read fails (with retries) while team B registers.
  teamB.faults.add({ match: 'GET /metadata', action: { kind: 'server-error' }, from: 1 });
  endpointB = await registerEndpoint('Care team B', teamB, smart.clientId, smart.privateKeyJwk);
  teamB.faults.clear();
}, 120_000);

afterAll(async () => {
  await Promise.all([svc.stop(), teamA.stop(), teamB.stop()]);
});

it('pulls a Synthea child from two SMART sources: counts per type equal what the servers hold', async () => {
  const opened = await svc.request('POST', '/api/cases', { token: cm, body: intakeFor(patientOf(bundle)) });
  expect(opened.status).toBe(201);
  const { id: caseId, status } = (await opened.json()) as { id: string; status: string };
  expect(status).toBe('submitted');

  const sourceA = await svc.request('POST', `/api/cases/${caseId}/sources`, { token: cm, body: { endpointId: endpointA, patient: { id: patientIdA } } });
  expect(sourceA.status).toBe(201);
  const sourceB = await svc.request('POST', `/api/cases/${caseId}/sources`, { token: cm, body: { endpointId: endpointB, patient: { match: true } } });
  expect(sourceB.status).toBe(201);
  expect(await sourceB.json()).toMatchObject({ state: 'resolved' });

  const started = await svc.request('POST', `/api/cases/${caseId}/pulls`, { token: cm, body: {} });
  expect(started.status).toBe(202);
  const { pullId } = (await started.json()) as { pullId: string };
  const pull = await waitForPull(caseId, pullId);
  expect(pull.state).toBe('complete');

  const [a, b] = [pull.sources.find((s) => s.endpointName === 'Care team A'), pull.sources.find((s) => s.endpointName === 'Care team B')];
  // Team A: Patient/$everything, split by _type into parallel paged streams; every resource arrived.
  expect(a?.resourceTypes.map((t) => t.query).filter((q) => !q.startsWith('Patient/$everything:'))).toEqual([]);
  expect(a?.resourceTypes.find((t) => t.resourceType === 'Observation')?.pages).toBeGreaterThan(1);
  const gotA: Record<string, number> = {};
  for (const t of a?.resourceTypes ?? []) for (const [type, n] of Object.entries(t.byType)) gotA[type] = (gotA[type] ?? 0) + n;
  const loaded = countsOf(bundle);
  for (const type of ['Patient', 'Observation', 'Condition', 'Encounter', 'Immunization', 'Procedure', 'AllergyIntolerance', 'MedicationRequest', 'DiagnosticReport', 'ImagingStudy']) {
    expect({ type, n: gotA[type] ?? 0 }).toEqual({ type, n: loaded[type] ?? 0 });
  }
  // Team B: the US Core searches per type.
  const expectedB = countsOf(bundle, usCoreCategory);
  const gotB: Record<string, number> = {};
  for (const t of b?.resourceTypes ?? []) for (const [type, n] of Object.entries(t.byType)) if (type === t.resourceType) gotB[type] = (gotB[type] ?? 0) + n;
  for (const type of ['Patient', 'Observation', 'Condition', 'Encounter', 'Immunization', 'Procedure', 'AllergyIntolerance', 'MedicationRequest', 'DiagnosticReport', 'ImagingStudy']) {
    expect({ type, n: gotB[type] ?? 0 }).toEqual({ type, n: expectedB[type] ?? 0 });
  }
  expect(b?.resourceTypes.some((t) => t.pages > 1)).toBe(true);
  // What each server said its queries would bring (Bundle.total): a search's matches, not the `_include`d
  // Medications; an `$everything` stream's resources of every type it asked for.
  for (const t of [...(a?.resourceTypes ?? []), ...(b?.resourceTypes ?? [])]) {
    const brought = t.query.startsWith('Patient/$everything') ? Object.values(t.byType).reduce((n, x) => n + x, 0) : (t.byType[t.resourceType] ?? 0);
    expect({ query: t.query, expected: t.expectedMatches }).toEqual({ query: t.query, expected: brought });
  }
  expect(pull.totals.tasksWithExpectedMatches).toBe(pull.totals.tasks);
  expect(pull.totals.expectedMatches).toBe([...(a?.resourceTypes ?? []), ...(b?.resourceTypes ?? [])].reduce((n, t) => n + (t.expectedMatches ?? 0), 0));

  // The raw store holds each resource once per source, whichever query brought it.
  const { rows } = await svc.service.db.query<{ endpoint_id: string; resource_type: string; n: number }>(
    `SELECT s.endpoint_id, r.resource_type, count(*)::int AS n FROM raw_resources r JOIN case_sources s ON s.id = r.source_id
     WHERE r.case_id = $1 GROUP BY 1, 2`,
    [caseId],
  );
  const stored = (endpoint: string, type: string): number => rows.find((r) => r.endpoint_id === endpoint && r.resource_type === type)?.n ?? 0;
  for (const type of ['Observation', 'Condition', 'Encounter', 'Immunization']) {
    expect({ type, a: stored(endpointA, type), b: stored(endpointB, type) }).toEqual({ type, a: loaded[type], b: expectedB[type] });
  }
  // The case moves on once the bundle is assembled: records are complete, the bundle is there at once,
  // and the SLA clock runs.
  const detail = await eventually(
    async () =>
      (await (await svc.request('GET', `/api/cases/${caseId}`, { token: cm })).json()) as {
        status: string;
        sla: unknown;
        sources: { state: string }[];
        pulls: { id: string; state: string }[];
      },
    (d) => d.status !== 'collecting_records',
    30_000,
  );
  expect(detail.status).toBe('records_complete');
  const assembled = await svc.request('GET', `/api/cases/${caseId}/bundle`, { token: cm });
  expect(assembled.status).toBe(200);
  await assembled.body?.cancel();
  // The pull says which bundle version holds its records.
  const pullNow = (await (await svc.request('GET', `/api/cases/${caseId}/pulls/${pullId}`, { token: cm })).json()) as PullView;
  expect(pullNow.assembledVersion).toBe(Number(assembled.headers.get('x-bundle-version')));
  expect(detail.sla).not.toBeNull();
  expect(detail.sources.map((s) => s.state)).toEqual(['resolved', 'resolved']);
  expect(detail.pulls.map((p) => [p.id, p.state])).toEqual([[pullId, 'complete']]);

  // An incremental re-pull asks only for what changed since, and stores the new version beside the old.
  const since = new Date().toISOString();
  const condition = bundle.entry?.find((e) => e.resource?.resourceType === 'Condition')?.resource;
  const changed = { ...condition, id: undefined, encounter: undefined, subject: { reference: `Patient/${patientIdA}` } };
  const conditionIdA = (await teamA.load([changed as never])).ids.Condition?.[0];
  const again = await svc.request('POST', `/api/cases/${caseId}/pulls`, { token: cm, body: { since } });
  expect(again.status).toBe(202);
  const incrementalId = ((await again.json()) as { pullId: string }).pullId;
  const incremental = await waitForPull(caseId, incrementalId);
  expect(incremental.state).toBe('complete');
  // Its assembly follows: the pull names the new version once it is stored, the first pull keeps its own.
  const listed = await eventually(
    async () => ((await (await svc.request('GET', `/api/cases/${caseId}/pulls`, { token: cm })).json()) as { items: (PullView & { id: string })[] }).items,
    (items) => typeof items.find((p) => p.id === incrementalId)?.assembledVersion === 'number',
    30_000,
  );
  expect(Object.fromEntries(listed.map((p) => [p.id, p.assembledVersion]))).toEqual({ [pullId]: pullNow.assembledVersion, [incrementalId]: (pullNow.assembledVersion ?? 0) + 1 });
  const fromA = incremental.sources.find((s) => s.endpointName === 'Care team A');
  // The new Condition, and the child's Patient, read again in full by every pull (source-patient-query.ts).
  expect(fromA?.resourceTypes.filter((t) => t.query !== 'Patient').reduce((n, t) => n + t.resources, 0)).toBe(1);
  expect(fromA?.resourceTypes.find((t) => t.query === 'Patient')?.resources).toBe(1);
  const { rows: newRows } = await svc.service.db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM raw_resources WHERE case_id = $1 AND resource_type = 'Condition' AND remote_id = $2`,
    [caseId, conditionIdA],
  );
  expect(newRows[0]?.n).toBe(1);
}, 120_000);

