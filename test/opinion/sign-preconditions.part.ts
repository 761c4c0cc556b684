/**
 * Who a signature is made under: the specialist the case is assigned to now (the report carries
 * their name and NPI), not one it was taken from. End to end over HTTP with the real service,
 * PostgreSQL and Redis.
 */
import { randomUUID } from 'node:crypto';
import { openCaseIn, opinionFor, referredIntake } from '../support/opinion-case';
import { pdfText } from '../support/pdf-text';
import { startTestService, type TestService } from '../support/service';

let svc: TestService;
let cm: string;

beforeAll(async () => {
  svc = await startTestService();
  cm = await svc.token('case_manager', 'cm-sign');
});
afterAll(async () => {
  await svc.stop();
});

interface Problem {
  detail: string;
  errors: { field: string }[];
  field?: string;
}
interface OpinionView {
  current: { version: number; specialist: { name: string; npi?: string }; records: { bundleVersion: number } | null } | null;
  draft: { specialist: { name: string; npi?: string } } | null;
}


const opinion = async (caseId: string): Promise<OpinionView> => (await (await svc.request('GET', `/api/cases/${caseId}/opinion`, { token: cm })).json()) as OpinionView;

it("refuses to sign (409) a draft saved under the specialist the case was taken from, and signs it under the new specialist's name once saved again", async () => {
  const caseId = await openCaseIn(svc, cm, 'assigned');
  const [first, second] = [randomUUID(), randomUUID()];
  // Specialists without a bound token subject (deployments that do not bind userSub): the token's subject is no one's.
  await svc.service.db.query(`INSERT INTO specialists (id, npi, name, specialty_codes) VALUES ($1, '1679576722', $2, ARRAY['endocrinology'])`, [
    first, JSON.stringify({ family: 'Previous', given: ['Ada'], prefix: ['Dr.'] }),
  ]);
  await svc.service.db.query(`INSERT INTO specialists (id, npi, name, specialty_codes) VALUES ($1, '1962422005', $2, ARRAY['endocrinology'])`, [
    second, JSON.stringify({ family: 'Current', given: ['Bo'], prefix: ['Dr.'] }),
  ]);
  await svc.service.db.query(`INSERT INTO assignments (id, case_id, specialist_id, method, assigned_by, assigned_at) VALUES ($1, $2, $3, 'named', 'cm-sign', now())`, [
    randomUUID(), caseId, first,
  ]);
  const token = await svc.token('specialist', 'spec-unbound');
  const saved = await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token, body: opinionFor(referredIntake()) });
  expect(saved.status).toBe(200);
  expect(((await saved.json()) as OpinionView).draft?.specialist).toMatchObject({ name: 'Dr. Ada Previous', npi: '1679576722' });

  const moved = await svc.request('PUT', `/api/cases/${caseId}/assignment`, { token: cm, body: { specialistId: second, reason: 'Dr. Previous is on leave' } });
  expect(moved.status).toBe(200);

  const refused = await svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token });
  expect(refused.status).toBe(409);
  const problem = (await refused.json()) as Problem;
  expect(problem.field).toBe('specialist');
  expect(problem.detail).toContain('Dr. Bo Current');
  expect((await opinion(caseId)).current).toBeNull();

  // Saved again for the current assignment: the report names the specialist the case is with.
  expect((await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token, body: opinionFor(referredIntake()) })).status).toBe(200);
  const signed = await svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token });
  expect(signed.status).toBe(201);
  expect(((await signed.json()) as OpinionView).current?.specialist).toMatchObject({ name: 'Dr. Bo Current', npi: '1962422005' });
  const pdf = Buffer.from(await (await svc.request('GET', `/api/cases/${caseId}/report.pdf`, { token: cm })).arrayBuffer());
  const text = (await pdfText(pdf)).replace(/\s+/g, ' ');
  expect(text).toContain('Dr. Bo Current, NPI 1962422005');
  expect(text).not.toContain('Previous');
});
