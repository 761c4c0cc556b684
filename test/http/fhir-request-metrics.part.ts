import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { registerOpenEndpoint } from '../support/sandbox-case';
import { FAST_CLIENT, startTestService, type TestService } from '../support/service';

/**
 * Each process's requests to the EHRs' FHIR servers as Prometheus metrics (`fhir/request-metrics.ts`):
 * served with the API's `/metrics`, and by a worker's own port (`METRICS_PORT`). Real service,
 * PostgreSQL, Redis and a sandbox EHR whose first /metadata answer is a 500.
 */
let ehr: SandboxServer;
beforeAll(async () => {
  ehr = await startSandboxServer({ name: 'metrics-ehr', auth: 'none' });
});
afterAll(async () => {
  await ehr.stop();
});

it("counts the API's requests to an EHR by endpoint, kind and status, with their time and retries", async () => {
  const svc: TestService = await startTestService({ ROLE: 'api' }, FAST_CLIENT);
  try {
    const failOnce = ehr.faults.add({ match: 'GET /metadata', nth: 1, action: { kind: 'server-error' } });
    const endpoint = await registerOpenEndpoint(svc, 'Metrics EHR', ehr.baseUrl);
    expect(ehr.faults.rule(failOnce)?.fired).toBe(1);
    const text = await (await svc.request('GET', '/metrics')).text();
    expect(text).toContain(`sob_fhir_requests_total{endpoint="${endpoint}",kind="capabilities",status="500"} 1`);
    expect(text).toContain(`sob_fhir_requests_total{endpoint="${endpoint}",kind="capabilities",status="200"} 1`);
    expect(text).toContain(`sob_fhir_retries_total{endpoint="${endpoint}",kind="capabilities"} 1`);
    expect(text).toContain(`sob_fhir_request_duration_seconds_count{endpoint="${endpoint}",kind="capabilities"} 2`);
    expect(text).not.toContain(ehr.baseUrl);
    expect(text).not.toContain('Metrics EHR');
  } finally {
    await svc.stop();
  }
});

it('serves a worker its own GET /metrics on METRICS_PORT, and nothing else there', async () => {
  const worker = await startTestService({ ROLE: 'worker', METRICS_PORT: '0' });
  try {
    expect(worker.service.url).toBeUndefined();
    const base = worker.service.metricsUrl ?? '';
    expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(text).toMatch(/process_cpu_user_seconds_total/);
    expect(text).toContain('# TYPE sob_fhir_requests_total counter');
    expect(text).toContain('# TYPE sob_fhir_request_duration_seconds histogram');
    expect((await fetch(`${base}/api/cases`)).status).toBe(404);
  } finally {
    await worker.stop();
  }
  const api = await startTestService({ ROLE: 'api', METRICS_PORT: '0' });
  try {
    // The API roles serve /metrics on PORT: no second server.
    expect(api.service.metricsUrl).toBeUndefined();
  } finally {
    await api.stop();
  }
});
