import { SOURCE_PATIENT_QUERY_KEY } from '../../src/pull/source-patient-query';
import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { intakeForChild } from '../support/intake';
import { eventually, FAST_CLIENT, startTestService, type TestService } from '../support/service';

/**
 * Outbound safety during a pull: only the registered endpoint is ever contacted. Next-page links
 * and attachment URLs pointing elsewhere (another origin, a private or link-local address) and
 * redirects off the origin are refused, and the other server sees no request at all.
 */
let svc: TestService;
let ehr: SandboxServer;
let elsewhere: SandboxServer;
let cm: string;
let endpointId: string;

beforeAll(async () => {
  svc = await startTestService({ PULL_JOB_BACKOFF_MS: '20' }, FAST_CLIENT);
  [ehr, elsewhere] = await Promise.all([
    startSandboxServer({ name: 'ehr', auth: 'none', defaultCount: 5, maxCount: 5 }),
    startSandboxServer({ name: 'elsewhere', auth: 'none' }),
  ]);
  const elsewhereBinary = `${elsewhere.baseUrl}/Binary/x`;
  await ehr.load([
    { resourceType: 'Patient', id: 'p1', name: [{ family: 'Quill', given: ['Ada'] }], birthDate: '2016-01-02' },
    ...Array.from({ length: 12 }, (_, i) => ({
      resourceType: 'Condition' as const,
      id: `c${i}`,
      subject: { reference: 'Patient/p1' },
      code: { text: `condition ${i}` },
    })),
    ...[`${'http://169.254.169.254'}/latest/meta-data`, 'http://10.0.0.1/doc.pdf', elsewhereBinary].map((url, i) => ({
      resourceType: 'DocumentReference' as const,
      id: `d${i}`,
      status: 'current' as const,
      subject: { reference: 'Patient/p1' },
      content: [{ attachment: { contentType: 'application/pdf', url } }],
    })),
  ]);
  cm = await svc.token('case_manager');
  const admin = await svc.token('admin');
  endpointId = ((await (
    await svc.request('POST', '/api/endpoints', { token: admin, body: { name: 'EHR', baseUrl: ehr.baseUrl, auth: { type: 'none' }, allowInsecureHttp: true, maxRequestsPerSecond: 1000 } })
  ).json()) as { id: string }).id;
});
afterAll(async () => {
  await Promise.all([svc.stop(), ehr.stop(), elsewhere.stop()]);
});

interface PullView {
  state: string;
  totals: { pages: number; resources: number };
  sources: { resourceTypes: { query: string; state: string; lastError: string | null }[] }[];
}

/** The pull's query for its Conditions (every pull reads the child's Patient too, in a query of its own: source-patient-query.ts). */
const conditionQuery = (view: PullView) => view.sources[0]?.resourceTypes.find((q) => q.query !== SOURCE_PATIENT_QUERY_KEY);

/** Pulls the child from `endpoint` (default: the EHR as registered in beforeAll) and waits for the end. */
async function pull(types?: string[], beforePull: () => void = () => undefined, endpoint = endpointId): Promise<{ caseId: string; view: PullView }> {
  const intake = intakeForChild('Ada', 'Quill', '2016-01-02');
  const { id: caseId } = (await (await svc.request('POST', '/api/cases', { token: cm, body: intake })).json()) as { id: string };
  expect((await svc.request('POST', `/api/cases/${caseId}/sources`, { token: cm, body: { endpointId: endpoint, patient: { id: 'p1' } } })).status).toBe(201);
  beforePull();
  const started = await svc.request('POST', `/api/cases/${caseId}/pulls`, { token: cm, body: types ? { types } : {} });
  expect(started.status).toBe(202);
  const { pullId } = (await started.json()) as { pullId: string };
  const view = await eventually(
    async () => (await (await svc.request('GET', `/api/cases/${caseId}/pulls/${pullId}`, { token: cm })).json()) as PullView,
    (p) => ['complete', 'partial', 'failed'].includes(p.state),
    60_000,
  );
  return { caseId, view };
}

it('refuses a next link to another origin and never contacts it', async () => {
  let rule = 0;
  try {
    const { view } = await pull(['Condition'], () => {
      rule = ehr.faults.add({ match: 'GET *', action: { kind: 'foreign-next-link', origin: new URL(elsewhere.baseUrl).origin } });
    });
    // The Condition query failed; the Patient read (one page, no next link) did not.
    expect(view.state).toBe('partial');
    const task = conditionQuery(view);
    expect(task?.state).toBe('failed');
    expect(task?.lastError).toMatch(/origin/i);
    expect(elsewhere.requestCount()).toBe(0);
  } finally {
    ehr.faults.remove(rule);
  }
});

/** The same EHR, registered again as one behind a proxy (`rebaseNextLinks`); its id and capabilities. */
async function registerBehindProxy(name: string): Promise<{ id: string; rebaseNextLinks: boolean; capabilities: { implementationUrl?: string } }> {
  const created = await svc.request('POST', '/api/endpoints', {
    token: await svc.token('admin'),
    body: { name, baseUrl: ehr.baseUrl, auth: { type: 'none' }, allowInsecureHttp: true, maxRequestsPerSecond: 1000, rebaseNextLinks: true },
  });
  expect(created.status).toBe(201);
  return (await created.json()) as { id: string; rebaseNextLinks: boolean; capabilities: { implementationUrl?: string } };
}

it('follows next links naming another origin on the endpoint origin when the endpoint is registered with rebaseNextLinks', async () => {
  const proxied = await registerBehindProxy('EHR behind a proxy');
  expect(proxied.rebaseNextLinks).toBe(true);
  const rule = ehr.faults.add({ match: 'GET *', action: { kind: 'foreign-next-link', origin: new URL(elsewhere.baseUrl).origin } });
  try {
    // 12 Conditions in pages of 5 (and the child's Patient, a page of its own): every page read from the EHR itself; the other origin never asked.
    const { view } = await pull(['Condition'], undefined, proxied.id);
    expect({ state: view.state, pages: view.totals.pages, resources: view.totals.resources }).toEqual({ state: 'complete', pages: 4, resources: 13 });
    expect(ehr.faults.rule(rule)?.fired).toBeGreaterThanOrEqual(2);
    expect(elsewhere.requestCount()).toBe(0);
    // Switched off again: the same links are refused, naming the way out.
    expect((await svc.request('PATCH', `/api/endpoints/${proxied.id}`, { token: await svc.token('admin'), body: { rebaseNextLinks: false } })).status).toBe(200);
    const { view: refused } = await pull(['Condition'], undefined, proxied.id);
    expect(refused.state).toBe('partial');
    expect(conditionQuery(refused)?.lastError).toBe(
      `refused next-page URL outside the endpoint origin (${new URL(elsewhere.baseUrl).origin}; an EHR behind a proxy that names its internal address in its links: register the endpoint with rebaseNextLinks)`,
    );
    expect(elsewhere.requestCount()).toBe(0);
  } finally {
    ehr.faults.remove(rule);
  }
});

it('moves next links under the base the EHR declares for itself under the endpoint base, when its proxy maps the path too', async () => {
  const endpoint = await registerBehindProxy('EHR behind a path-mapping proxy');
  // What the EHR says its base is, from its CapabilityStatement (here: its real one).
  expect(endpoint.capabilities.implementationUrl).toBe(ehr.baseUrl);
  // Behind the proxy it would say its internal base, and write it into its links.
  const internal = 'http://hapi.internal:8080/hapi-fhir/baseR4';
  await svc.service.db.query(`UPDATE endpoints SET capabilities = jsonb_set(capabilities, '{implementationUrl}', to_jsonb($2::text)) WHERE id = $1`, [endpoint.id, internal]);
  const rule = ehr.faults.add({ match: 'GET *', action: { kind: 'foreign-next-link', origin: 'http://hapi.internal:8080', base: internal } });
  try {
    const { view } = await pull(['Condition'], undefined, endpoint.id);
    expect({ state: view.state, pages: view.totals.pages, resources: view.totals.resources }).toEqual({ state: 'complete', pages: 4, resources: 13 });
    expect(ehr.faults.rule(rule)?.fired).toBeGreaterThanOrEqual(2);
    // Without the declared base, the path would be kept as the proxy wrote it: not found at the endpoint.
    await svc.service.db.query(`UPDATE endpoints SET capabilities = capabilities - 'implementationUrl' WHERE id = $1`, [endpoint.id]);
    const { view: lost } = await pull(['Condition'], undefined, endpoint.id);
    expect(lost.state).toBe('partial');
    // The failure says why: a link moved with its path kept, for want of the EHR's own base.
    expect(conditionQuery(lost)?.lastError).toBe(
      "FHIR server answered 404 (http-404; the next link named http://hapi.internal:8080 and was followed on the endpoint's origin with its path unchanged, " +
        "since its CapabilityStatement declares no implementation.url: a proxy that maps paths needs the EHR's own base to move such links under the endpoint's base " +
        '(refresh its capabilities: POST /api/endpoints/:id/capabilities))',
    );
    expect(elsewhere.requestCount()).toBe(0);
  } finally {
    ehr.faults.remove(rule);
  }
});

it('refuses a redirect off the origin', async () => {
  let rule = 0;
  try {
    const { view } = await pull(['Condition'], () => {
      rule = ehr.faults.add({ match: 'GET *', action: { kind: 'redirect', location: `${elsewhere.baseUrl}/Condition` } });
    });
    expect(view.state).toBe('failed');
    expect(elsewhere.requestCount()).toBe(0);
  } finally {
    ehr.faults.remove(rule);
  }
});

it('refuses attachment URLs to link-local, private or other origins, and the pull still completes', async () => {
  const { caseId, view } = await pull(['DocumentReference']);
  expect(view.state).toBe('complete');
  const { rows } = await svc.service.db.query<{ remote_id: string; state: string; error: string }>(
    'SELECT remote_id, state, error FROM attachments WHERE case_id = $1 ORDER BY remote_id',
    [caseId],
  );
  expect(rows.map((r) => [r.remote_id, r.state])).toEqual([
    ['d0', 'failed'],
    ['d1', 'failed'],
    ['d2', 'failed'],
  ]);
  for (const row of rows) expect({ id: row.remote_id, error: row.error }).toEqual({ id: row.remote_id, error: expect.stringMatching(/refused|origin/i) });
  expect(elsewhere.requestCount()).toBe(0);
});
