import { Queue, type Job } from 'bullmq';
import { assembleJobId } from '../../queues/pull-flow';
import { QUEUES } from '../../queues/names';
import { bullConnectionOptions } from '../../src/redis';
import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { fixtureBundle, fixtureIntake, fixturePatientId } from '../support/fixture-child';
import { bundleAssembled, eventually, FAST_CLIENT, startTestService, type TestService } from '../support/service';
import { pauseEndpoint } from '../support/endpoint-pause';
import { searchPerType } from '../support/sandbox-case';
import { makeSmartClient, type TestSmartClient } from '../support/smart-client';
import { JORGE, patientOf, readBundle } from '../support/synthea';

/**
 * Pulls under fire: the sandbox throws every fault a hospital EHR throws, and the pull still ends
 * with exactly the resources the server holds; a source that keeps failing ends the pull
 * `partial`, and retrying it alone completes the pull.
 */
let svc: TestService;
let smart: TestSmartClient;
let cm: string;
let admin: string;

beforeAll(async () => {
  smart = await makeSmartClient('sob-faults', 'ES384');
  // A task waits at most 8 s in all for a paused endpoint, so a source that stays down fails within the
  // test; longer than the 3 s pause below and its probe, on a loaded host too.
  svc = await startTestService({ PULL_JOB_BACKOFF_MS: '50', FHIR_REQUEST_TIMEOUT_MS: '1500', PULL_MAX_PAUSE_WAIT_MS: '8000' }, FAST_CLIENT);
  admin = await svc.token('admin');
  cm = await svc.token('case_manager');
});
afterAll(async () => {
  await svc.stop();
});

interface PullView {
  state: string;
  totals: { resources: number; retries: number; attachmentsFound: number; attachmentsFetched: number; attachmentsFailed: number; tasksWaiting: number };
  failedSources: { sourceId: string; endpointName: string }[];
  sources: { sourceId: string; endpointName: string; state: string; resourceTypes: { lastError: string | null; retries: number; waitingUntil: string | null }[] }[];
}

async function team(name: 'care-team-a' | 'care-team-b', paging: 'offset' | 'token', pageSize = 20): Promise<{ server: SandboxServer; endpointId: string; patientId: string }> {
  const server = await startSandboxServer({ name, auth: 'smart', paging, defaultCount: pageSize, maxCount: pageSize });
  server.registerClient({ clientId: smart.clientId, jwks: smart.publicJwks });
  await server.load(fixtureBundle(name));
  const res = await svc.request('POST', '/api/endpoints', {
    token: admin,
    body: { name, baseUrl: server.baseUrl, auth: { type: 'smart-backend', clientId: smart.clientId, privateKeyJwk: smart.privateKeyJwk }, allowInsecureHttp: true, maxRequestsPerSecond: 1000, maxConcurrency: 8 },
  });
  expect(res.status).toBe(201);
  return { server, endpointId: ((await res.json()) as { id: string }).id, patientId: fixturePatientId(name) };
}

async function openCaseWith(sources: { endpointId: string; patientId: string }[]): Promise<string> {
  const { id } = (await (await svc.request('POST', '/api/cases', { token: cm, body: fixtureIntake() })).json()) as { id: string };
  for (const s of sources) {
    const res = await svc.request('POST', `/api/cases/${id}/sources`, { token: cm, body: { endpointId: s.endpointId, patient: { id: s.patientId } } });
    expect(res.status).toBe(201);
  }
  return id;
}

const pullOf = async (caseId: string, pullId: string): Promise<PullView> =>
  (await (await svc.request('GET', `/api/cases/${caseId}/pulls/${pullId}`, { token: cm })).json()) as PullView;

async function pullToEnd(caseId: string, pullId: string): Promise<PullView> {
  try {
    return await eventually(() => pullOf(caseId, pullId), (p) => ['complete', 'partial', 'failed'].includes(p.state), 90_000);
  } catch (err) {
    throw new Error(`${(err as Error).message}\nwhere the pull stands: ${JSON.stringify(await pullDiagnosis(pullId).catch((e: unknown) => `not read: ${String(e)}`))}`);
  }
}

/** The parent's children BullMQ still waits for: each one's key and state (`missing` when its job is gone). */
async function unprocessedChildren(parent: Job): Promise<string[]> {
  const { unprocessed = [] } = await parent.getDependencies({ unprocessed: { count: 50 } });
  return Promise.all(
    unprocessed.map(async (key) => {
      const [, queueName = '', ...id] = key.split(':');
      const queue = new Queue(queueName, { connection: bullConnectionOptions(svc.config.redisUrl), prefix: svc.config.queuePrefix });
      try {
        const child = await queue.getJob(id.join(':'));
        return `${key}: ${child ? `${await child.getState()} (attempts ${child.attemptsMade}, delay ${child.delay}, ${child.failedReason ?? ''})` : 'missing'}`;
      } finally {
        await queue.close();
      }
    }),
  );
}

/** A pull that did not end, for the failure message: its tasks' rows, and its flow's jobs in BullMQ. */
async function pullDiagnosis(pullId: string): Promise<unknown> {
  const { rows: tasks } = await svc.service.db.query<{ query_key: string; state: string; pages: number; attempt: number }>(
    'SELECT t.query_key, t.state, t.pages, p.attempt FROM pull_tasks t JOIN pulls p ON p.id = t.pull_id WHERE t.pull_id = $1 ORDER BY t.query_key',
    [pullId],
  );
  const attempt = tasks[0]?.attempt ?? 1;
  const parents = new Queue(QUEUES.assembleCase, { connection: bullConnectionOptions(svc.config.redisUrl), prefix: svc.config.queuePrefix });
  try {
    const parent = await parents.getJob(assembleJobId(pullId, attempt));
    return {
      tasks: tasks.map((t) => `${t.query_key}:${t.state}:${t.pages}`),
      parent: parent ? { state: await parent.getState(), attemptsMade: parent.attemptsMade, failedReason: parent.failedReason, dependencies: await parent.getDependenciesCount() } : 'missing',
      unprocessed: parent ? await unprocessedChildren(parent) : [],
    };
  } finally {
    await parents.close();
  }
}

async function startPull(caseId: string): Promise<string> {
  const res = await svc.request('POST', `/api/cases/${caseId}/pulls`, { token: cm, body: {} });
  expect(res.status).toBe(202);
  return ((await res.json()) as { pullId: string }).pullId;
}

/** `Type/id` of every resource stored raw for the case. */
async function storedKeys(caseId: string): Promise<string[]> {
  const { rows } = await svc.service.db.query<{ k: string }>(
    `SELECT resource_type || '/' || remote_id AS k FROM raw_resources WHERE case_id = $1 ORDER BY 1`,
    [caseId],
  );
  return rows.map((r) => r.k);
}

/** What the server holds of the pulled types, as `Type/id`. */
function heldKeys(name: 'care-team-a' | 'care-team-b', server: SandboxServer, types: string[]): string[] {
  const bundle = fixtureBundle(name);
  return (bundle.entry ?? [])
    .map((e) => e.resource)
    .filter((r): r is NonNullable<typeof r> => r !== undefined && types.includes(r.resourceType) && server.read(r.resourceType, r.id ?? '') !== undefined)
    .map((r) => `${r.resourceType}/${r.id}`)
    .sort();
}

/** Another Synthea patient, held by the same EHR in the test of a server ignoring the patient parameter. */
const LOMA = 'fhir/synthea-smart/Loma_Johns_0f30cacb-3348-4baf-8946-cd2175a750b3.json';

const CLINICAL = ['Patient', 'Observation', 'DiagnosticReport', 'DocumentReference', 'ImagingStudy', 'Condition', 'MedicationRequest', 'AllergyIntolerance', 'Procedure', 'Encounter', 'Immunization'];

it('completes through 429s, 503s, 500s, a hang, a reset, malformed and truncated pages and an expired token, with the same resources', async () => {
  const a = await team('care-team-a', 'token');
  try {
    // Deterministic: the Nth GET of any route meets each fault.
    const faults = [
      { nth: 2, action: { kind: 'rate-limit', retryAfterSeconds: 1 } },
      { nth: 4, action: { kind: 'unavailable' } },
      { nth: 6, action: { kind: 'server-error', message: 'lock-error' } },
      { nth: 8, action: { kind: 'hang' } },
      { nth: 10, action: { kind: 'malformed-json' } },
      { nth: 12, action: { kind: 'truncated', fraction: 0.5 } },
      { nth: 14, action: { kind: 'reset' } },
      { nth: 16, action: { kind: 'expired-token' } },
      { nth: 18, action: { kind: 'rate-limit', retryAfterSeconds: 1, retryAfterFormat: 'http-date' } },
    ] as const;
    for (const f of faults) a.server.faults.add({ match: 'GET *', action: f.action, nth: f.nth });
    const caseId = await openCaseWith([a]);
    const pull = await pullToEnd(caseId, await startPull(caseId));
    expect(pull.state).toBe('complete');
    expect(pull.totals.retries).toBeGreaterThanOrEqual(5);
    const stored = await storedKeys(caseId);
    expect(stored).toEqual(heldKeys('care-team-a', a.server, [...CLINICAL, 'Binary', 'Medication', 'Endpoint']));
    expect(new Set(stored).size).toBe(stored.length);
    // Attachments: inline PDFs and Binary URLs, all fetched and checked.
    expect(pull.totals.attachmentsFound).toBeGreaterThan(0);
    expect(pull.totals.attachmentsFetched).toBe(pull.totals.attachmentsFound);
    const { rows } = await svc.service.db.query<{ integrity: string; n: number }>(
      `SELECT integrity, count(*)::int AS n FROM attachments WHERE case_id = $1 GROUP BY 1`,
      [caseId],
    );
    expect(rows.every((r) => r.integrity === 'verified' || r.integrity === 'unverified')).toBe(true);
  } finally {
    await a.server.stop();
  }
}, 120_000);

it('ends partial naming a source that keeps failing, and retrying it alone completes the pull', async () => {
  const a = await team('care-team-a', 'offset');
  const b = await team('care-team-b', 'token');
  try {
    const caseId = await openCaseWith([a, b]);
    const broken = b.server.faults.add({ match: 'GET *', action: { kind: 'unavailable' } });
    const pullId = await startPull(caseId);
    const partial = await pullToEnd(caseId, pullId);
    expect(partial.state).toBe('partial');
    expect(partial.failedSources.map((s) => s.endpointName)).toEqual(['care-team-b']);
    expect(partial.sources.find((s) => s.endpointName === 'care-team-b')?.resourceTypes.some((t) => (t.lastError ?? '').length > 0)).toBe(true);
    const detail = (await (await svc.request('GET', `/api/cases/${caseId}`, { token: cm })).json()) as { status: string; timeline: { type: string }[] };
    expect(detail.status).toBe('collecting_records');
    expect(detail.timeline.map((e) => e.type)).toContain('pull_partial');

    // Retried while care team B is paused by its breaker for longer than the jobs' retries last
    // (4 attempts, 50 ms backoff): the retried tasks wait for the pause to end, and for one of them
    // to probe, instead of failing again.
    b.server.faults.remove(broken);
    // 3 s: the retried tasks' waiting is seen only until the pause ends, and the retry, the jobs' start
    // and a progress read must all come first (1.5 s was not always enough on a loaded host).
    await pauseEndpoint(svc, b.endpointId, 3000);
    const requestsToA = a.server.requestCount();
    const retried = await svc.request('POST', `/api/cases/${caseId}/pulls/${pullId}/retry`, { token: cm });
    expect(retried.status).toBe(202);
    // The progress says the tasks wait, and until when.
    const waiting = await eventually(() => pullOf(caseId, pullId), (p) => p.totals.tasksWaiting > 0, 10_000);
    const waitingQuery = waiting.sources.flatMap((s) => s.resourceTypes).find((t) => t.waitingUntil !== null);
    expect(waitingQuery?.lastError).toMatch(/endpoint paused by its circuit breaker; waiting/);
    expect(Date.parse(waitingQuery?.waitingUntil ?? '')).toBeGreaterThan(Date.now() - 5_000);
    const complete = await pullToEnd(caseId, pullId);
    expect(complete.state).toBe('complete');
    expect(complete.totals.tasksWaiting).toBe(0);
    // Only the failed source was asked again.
    expect(a.server.requestCount()).toBe(requestsToA);
    const stored = await storedKeys(caseId);
    expect(new Set(stored).size).toBe(stored.length);
    // The case moves on once the bundle of the retried pull is assembled.
    await eventually(async () => ((await (await svc.request('GET', `/api/cases/${caseId}`, { token: cm })).json()) as { status: string }).status, (s) => s === 'records_complete', 30_000);
    // The case manager was told both: the partial pull to act on, then the records complete.
    const notes = await eventually(
      async () => ((await (await svc.request('GET', `/api/notifications?caseId=${caseId}`, { token: cm })).json()) as { items: { type: string; message: string }[] }).items,
      (items) => items.some((n) => n.type === 'records.complete'),
      30_000,
    );
    expect(notes.map((n) => n.type).sort()).toEqual(['pull.partial', 'records.complete']);
    expect(notes.find((n) => n.type === 'pull.partial')?.message).toMatch(/ended partial: 1 source could not be pulled/);
    expect(notes.find((n) => n.type === 'records.complete')?.message).toMatch(/bundle is assembled \(version \d+\)/);
    // A complete pull cannot be retried.
    expect((await svc.request('POST', `/api/cases/${caseId}/pulls/${pullId}/retry`, { token: cm })).status).toBe(409);
  } finally {
    await Promise.all([a.server.stop(), b.server.stop()]);
  }
}, 120_000);

it('fetches the failed documents of a source that completed again when a partial pull is retried', async () => {
  const a = await team('care-team-a', 'offset');
  const b = await team('care-team-b', 'token');
  try {
    const caseId = await openCaseWith([a, b]);
    // Both fail for good, without tripping a circuit breaker: a redirect off the endpoint's origin is refused.
    const off = { kind: 'redirect', location: 'https://elsewhere.example/x' } as const;
    const brokenB = b.server.faults.add({ match: 'GET *', action: off });
    const noBinaries = a.server.faults.add({ match: 'GET /Binary*', action: off });
    const pullId = await startPull(caseId);
    const partial = await pullToEnd(caseId, pullId);
    expect(partial.state).toBe('partial');
    expect(partial.failedSources.map((s) => s.endpointName)).toEqual(['care-team-b']);
    const failedAttachments = async (): Promise<number> =>
      (await svc.service.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM attachments WHERE case_id = $1 AND state = 'failed'`, [caseId])).rows[0]?.n ?? -1;
    expect(await failedAttachments()).toBeGreaterThan(0);

    b.server.faults.remove(brokenB);
    a.server.faults.remove(noBinaries);
    const requestsToA = a.server.requestCount();
    const binariesFromA = a.server.requestCount('GET /Binary*');
    expect((await svc.request('POST', `/api/cases/${caseId}/pulls/${pullId}/retry`, { token: cm })).status).toBe(202);
    const complete = await pullToEnd(caseId, pullId);
    expect(complete.state).toBe('complete');
    // Care team A (complete) is asked only for its failed documents; none is left failed.
    expect(a.server.requestCount('GET /Binary*')).toBeGreaterThan(binariesFromA);
    expect(a.server.requestCount() - requestsToA).toBe(a.server.requestCount('GET /Binary*') - binariesFromA);
    expect(await failedAttachments()).toBe(0);
    expect(complete.totals.attachmentsFetched).toBe(complete.totals.attachmentsFound);
  } finally {
    await Promise.all([a.server.stop(), b.server.stop()]);
  }
}, 120_000);

it("shows what the server said about a query besides its results (search.mode = outcome), and stores no such entry as a record", async () => {
  const a = await team('care-team-a', 'offset');
  try {
    // Every page of the patient's record ($everything, one query per type group) says the results were cut.
    const rule = a.server.faults.add({ match: 'GET /Patient/*/$everything', action: { kind: 'search-outcome', severity: 'warning', code: 'incomplete', message: 'Results limited to the last 2 years' } });
    const caseId = await openCaseWith([a]);
    const pull = await pullToEnd(caseId, await startPull(caseId));
    expect(pull.state).toBe('complete');
    expect(a.server.faults.rule(rule)?.fired).toBeGreaterThan(1);
    type Task = { query: string; pages: number; serverMessages: { severity: string; code: string; text: string; pages: number }[] };
    const tasks = (pull as unknown as { sources: { resourceTypes: Task[] }[] }).sources.flatMap((s) => s.resourceTypes);
    const everything = tasks.filter((t) => t.query.includes('$everything'));
    expect(everything.length).toBeGreaterThan(1);
    for (const t of everything) expect(t.serverMessages).toEqual([{ severity: 'warning', code: 'incomplete', text: 'Results limited to the last 2 years', pages: t.pages }]);
    expect(tasks.filter((t) => !t.query.includes('$everything')).every((t) => t.serverMessages.length === 0)).toBe(true);
    expect((pull as unknown as { totals: { serverMessages: number } }).totals.serverMessages).toBe(everything.length);
    // The outcome is not a record: what the server holds is stored, nothing more.
    expect(await storedKeys(caseId)).toEqual(heldKeys('care-team-a', a.server, [...CLINICAL, 'Binary', 'Medication', 'Endpoint']));
    // The specialist reads it at the head of the case record, and the completeness report lists it.
    await bundleAssembled(svc, caseId, cm);
    const bundle = (await (await svc.request('GET', `/api/cases/${caseId}/bundle`, { token: cm })).json()) as { entry: { resource: { resourceType: string; text?: { div: string } } }[] };
    expect(bundle.entry[0]?.resource.text?.div).toContain('About the records from care-team-a, its EHR said: Results limited to the last 2 years (warning).');
    const report = (await (await svc.request('GET', `/api/cases/${caseId}/completeness`, { token: cm })).json()) as { sources: { serverMessages: unknown[] }[] };
    expect(report.sources[0]?.serverMessages).toEqual([{ severity: 'warning', code: 'incomplete', text: 'Results limited to the last 2 years' }]);
    // And with the case's sources, where the case manager looks first.
    const sources = (await (await svc.request('GET', `/api/cases/${caseId}/sources`, { token: cm })).json()) as { items: { serverMessages: unknown[] }[] };
    expect(sources.items.map((x) => x.serverMessages)).toEqual([[{ severity: 'warning', code: 'incomplete', text: 'Results limited to the last 2 years' }]]);
    // The case managers are told, as the records are declared complete: one distinct thing said.
    const notes = await eventually(
      async () => ((await (await svc.request('GET', `/api/notifications?caseId=${caseId}`, { token: cm })).json()) as { items: { type: string; message: string }[] }).items,
      (items) => items.some((n) => n.type === 'records.complete'),
    );
    expect(notes.find((n) => n.type === 'records.complete')?.message).toMatch(
      /: the case can be assigned to a specialist\. But the EHRs said 1 thing about their searches that may mean records are missing \(results cut short, records withheld…\): read them with the case's sources before assigning\.$/,
    );
  } finally {
    await a.server.stop();
  }
}, 120_000);

it("stops a query the server answers with other patients' records (it ignored the patient parameter), storing none of them", async () => {
  const server = await startSandboxServer({ name: 'care-team-a', auth: 'smart', paging: 'offset', defaultCount: 100, maxCount: 100 });
  try {
    server.registerClient({ clientId: smart.clientId, jwks: smart.publicJwks });
    await server.load(fixtureBundle('care-team-a'));
    const others = [JORGE, LOMA].map((f) => patientOf(readBundle(f)).id ?? '');
    for (const f of [JORGE, LOMA]) await server.load(readBundle(f));
    const res = await svc.request('POST', '/api/endpoints', {
      token: admin,
      body: { name: 'care-team-a (ignores patient on Observation)', baseUrl: server.baseUrl, auth: { type: 'smart-backend', clientId: smart.clientId, privateKeyJwk: smart.privateKeyJwk }, allowInsecureHttp: true, maxRequestsPerSecond: 1000 },
    });
    const endpointId = ((await res.json()) as { id: string }).id;
    // Searches per type (no $everything), and Observation searches ignore `patient`.
    await searchPerType(svc, endpointId);
    const rule = server.faults.add({ match: 'GET /Observation', action: { kind: 'ignore-parameter', name: 'patient' } });
    const caseId = await openCaseWith([{ endpointId, patientId: fixturePatientId('care-team-a') }]);
    const pull = await pullToEnd(caseId, await startPull(caseId));
    expect(server.faults.rule(rule)?.fired).toBeGreaterThan(0);
    expect(pull.state).toBe('partial');
    const failed = pull.sources.flatMap((s) => s.resourceTypes).filter((t) => t.lastError !== null);
    expect(failed.length).toBeGreaterThan(0);
    // How many other patients, never who: the error is shown to this case's users and logged.
    for (const t of failed) {
      expect(t.lastError).toMatch(/^the server answered this query with records of \d+ other patients: it may not support searching by patient; nothing of it was stored \(ask the EHR's administrators whether it supports this search by patient\)$/);
      expect(t.lastError).not.toMatch(/Patient\/|\d{4}-|[0-9a-f]{8}-/);
    }
    // Not one of their records reached the raw store; the child's other records did.
    const { rows } = await svc.service.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM raw_resources WHERE case_id = $1 AND (resource::text LIKE $2 OR resource::text LIKE $3)`,
      [caseId, `%${others[0] ?? 'x'}%`, `%${others[1] ?? 'x'}%`],
    );
    expect(rows[0]?.n).toBe(0);
    expect((await storedKeys(caseId)).filter((k) => k.startsWith('Condition/')).length).toBeGreaterThan(0);
  } finally {
    await server.stop();
  }
}, 120_000);

it('answers a pull asked for again while the same one is under way with that pull, instead of pulling the record twice', async () => {
  const a = await team('care-team-a', 'offset');
  try {
    const caseId = await openCaseWith([a]);
    a.server.latencyMs = 200;
    const ask = async (body: unknown = {}) => {
      const res = await svc.request('POST', `/api/cases/${caseId}/pulls`, { token: cm, body });
      expect(res.status).toBe(202);
      return (await res.json()) as { pullId: string; alreadyUnderWay?: boolean };
    };
    // Twice at once (a double click): one pull.
    const [first, second] = await Promise.all([ask(), ask()]);
    expect(second.pullId).toBe(first.pullId);
    expect([first.alreadyUnderWay, second.alreadyUnderWay].filter(Boolean)).toEqual([true]);
    const again = await ask();
    expect(again).toMatchObject({ pullId: first.pullId, alreadyUnderWay: true });
    // Another scope is another pull.
    const labs = await ask({ types: ['Observation'] });
    expect(labs.pullId).not.toBe(first.pullId);
    expect(labs.alreadyUnderWay).toBeUndefined();
    a.server.latencyMs = 0;
    await pullToEnd(caseId, first.pullId);
    await pullToEnd(caseId, labs.pullId);
    const { rows } = await svc.service.db.query<{ n: number }>('SELECT count(*)::int AS n FROM pulls WHERE case_id = $1', [caseId]);
    expect(rows[0]?.n).toBe(2);
    // Once it has ended, asking again starts a new pull.
    const next = await ask();
    expect(next.pullId).not.toBe(first.pullId);
    expect(next.alreadyUnderWay).toBeUndefined();
    await pullToEnd(caseId, next.pullId);
  } finally {
    a.server.latencyMs = 0;
    await a.server.stop();
  }
}, 120_000);

describe('a server whose paging goes round in circles', () => {
  /** Care team A with pages of 5, searched per type (no $everything), `fault` on its Observation searches. */
  async function pullUnder(fault: 'paging-loop' | 'stuck-paging' | 'endless-paging', paging: 'offset' | 'token') {
    const a = await team('care-team-a', paging, 5);
    await searchPerType(svc, a.endpointId);
    const rule = a.server.faults.add({ match: paging === 'offset' ? 'GET /Observation' : 'GET *', action: { kind: fault } });
    const caseId = await openCaseWith([a]);
    const pullId = await startPull(caseId);
    const pull = await pullToEnd(caseId, pullId);
    const { rows: tasks } = await svc.service.db.query<{ resource_type: string; query_key: string; state: string; pages: number; last_error: string | null }>(
      'SELECT resource_type, query_key, state, pages, last_error FROM pull_tasks WHERE pull_id = $1 ORDER BY resource_type, request_params::text',
      [pullId],
    );
    return { a, rule, caseId, pull, tasks };
  }

  type TaskRowView = Awaited<ReturnType<typeof pullUnder>>['tasks'][number];

  /** The Observation queries that find the child's results here: the other categories, and a missing one, find none (no paging to go wrong). */
  const FINDING = ['Observation:laboratory', 'Observation:vital-signs'];

  /** The pull's Observation queries that find the child's results ({@link FINDING}), each failed with an error matching `reason`. */
  function observationQueriesStopped(tasks: readonly TaskRowView[], reason: RegExp): TaskRowView[] {
    const observations = tasks.filter((t) => FINDING.includes(t.query_key));
    expect(observations.length).toBeGreaterThan(0);
    for (const t of observations) expect({ state: t.state, error: t.last_error }).toEqual({ state: 'failed', error: expect.stringMatching(reason) as unknown });
    return observations;
  }

  it('stops a query whose next link leads back to a page already read, keeping what it read; the other queries complete', async () => {
    const { a, rule, caseId, pull, tasks } = await pullUnder('paging-loop', 'offset');
    try {
      expect(a.server.faults.rule(rule)?.fired).toBeGreaterThan(0);
      expect(pull.state).toBe('partial');
      // A page linking to itself: from page 2 on (page 1's link leads to a copy of page 1 under another URL, which brings nothing new).
      const observations = observationQueriesStopped(
        tasks,
        /^(the next link of page \d+ of this query leads back to page \d+: the server's paging goes round in a circle|page 2 of this query held only records its earlier pages had: the server's paging does not advance), so the query stopped \(what pages? [\d–]+ held is kept\)$/,
      );
      for (const t of observations) expect(t.pages).toBeLessThanOrEqual(3);
      expect(tasks.filter((t) => t.resource_type !== 'Observation').map((t) => t.state)).toEqual(tasks.filter((t) => t.resource_type !== 'Observation').map(() => 'complete'));
      // A handful of requests, not an endless loop: each of those Observation queries asked at most 3 pages.
      const observationRequests = a.server.requests().filter((r) => r.target.startsWith('/Observation') && /[?&]category=(laboratory|vital-signs)(&|$)/.test(r.target)).length;
      expect(observationRequests).toBeLessThanOrEqual(3 * observations.length);
      expect((await storedKeys(caseId)).some((k) => k.startsWith('Observation/'))).toBe(true);
    } finally {
      await a.server.stop();
    }
  }, 120_000);

  it('stops a query whose pages hold only what its earlier pages had (paging that never advances), with either paging style', async () => {
    for (const paging of ['offset', 'token'] as const) {
      const { a, caseId, pull, tasks } = await pullUnder('stuck-paging', paging);
      try {
        expect({ paging, state: pull.state }).toEqual({ paging, state: 'partial' });
        // Every query of more than one page is stuck on its first: stopped at its second page, before storing it.
        const stuck = tasks.filter((t) => t.state === 'failed');
        expect(stuck.map((t) => t.resource_type)).toContain('Observation');
        for (const t of stuck) {
          expect({ paging, pages: t.pages, error: t.last_error }).toEqual({
            paging,
            pages: 1,
            error: "page 2 of this query held only records its earlier pages had: the server's paging does not advance, so the query stopped (what page 1 held is kept)",
          });
        }
        // The queries of one page, and (offset paging: the fault is on Observation only) the others, complete.
        for (const t of tasks.filter((x) => x.state !== 'failed')) {
          expect({ paging, type: t.resource_type, state: t.state, onePage: t.pages === 1 || paging === 'offset' }).toEqual({ paging, type: t.resource_type, state: 'complete', onePage: true });
        }
        expect((await storedKeys(caseId)).filter((k) => k.startsWith('Observation/')).length).toBeGreaterThan(0);
      } finally {
        await a.server.stop();
      }
    }
  }, 120_000);

  it('stops a query whose pages never end (a next link on every page, past the end of the results), keeping every record', async () => {
    const { a, caseId, pull, tasks } = await pullUnder('endless-paging', 'offset');
    try {
      expect(pull.state).toBe('partial');
      observationQueriesStopped(tasks, /^pages \d+–\d+ of this query held no records: the server's paging does not end, so the query stopped \(what pages 1–\d+ held is kept\)$/);
      // Every Observation the server holds was stored before the paging ran on.
      expect((await storedKeys(caseId)).filter((k) => k.startsWith('Observation/'))).toEqual(heldKeys('care-team-a', a.server, ['Observation']));
    } finally {
      await a.server.stop();
    }
  }, 120_000);
});
