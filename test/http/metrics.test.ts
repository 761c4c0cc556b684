import { startTestService, type TestService } from '../support/service';
import { sampleIntake } from '../support/intake';

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService({ ROLE: 'api' });
});
afterAll(async () => {
  await svc.stop();
});

it('exposes route counters by pattern and status, work by state, and no ids or PHI', async () => {
  const cm = await svc.token('case_manager');
  const created = (await (await svc.request('POST', '/api/cases', { token: cm, body: sampleIntake() })).json()) as { id: string };
  expect((await svc.request('GET', `/api/cases/${created.id}`, { token: cm })).status).toBe(200);
  expect((await svc.request('GET', '/api/cases/00000000-0000-4000-8000-000000000000', { token: cm })).status).toBe(404);
  await svc.service.db.query(
    `INSERT INTO pulls (id, case_id, state, requested_by) VALUES (gen_random_uuid(), $1, 'queued', 'metrics-test')`,
    [created.id],
  );

  const res = await svc.request('GET', '/metrics');
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
  const text = await res.text();
  expect(text).toMatch(/sob_http_requests_total\{method="POST",route="\/api\/cases",status="201"\} 1/);
  expect(text).toMatch(/sob_http_requests_total\{method="GET",route="\/api\/cases\/:id",status="200"\} 1/);
  expect(text).toMatch(/sob_http_requests_total\{method="GET",route="\/api\/cases\/:id",status="404"\} 1/);
  expect(text).toMatch(/sob_http_request_duration_seconds_count\{method="POST",route="\/api\/cases"\} 1/);
  expect(text).toMatch(/sob_work_items\{table="pulls",state="queued"\} 1/);
  expect(text).toMatch(/process_cpu_user_seconds_total/);
  expect(text).not.toContain(created.id);
  expect(text).not.toContain(sampleIntake().patient.name.family);
});
