import { randomUUID } from 'node:crypto';
import { PDFDocument } from 'pdf-lib';
import { openCaseIn, opinionFor, referredIntake } from '../support/opinion-case';
import { pdfText } from '../support/pdf-text';
import { startTestService, type TestService } from '../support/service';

/** The opinion routes without a recipient: lifecycle rules, versions, the PDF, the assigned specialist. */
let svc: TestService;
let cm: string;
let specialist: string;

beforeAll(async () => {
  svc = await startTestService();
  cm = await svc.token('case_manager', 'cm-op');
  specialist = await svc.token('specialist', 'spec-op');
});
afterAll(async () => {
  await svc.stop();
});

const status = async (caseId: string): Promise<string> => ((await (await svc.request('GET', `/api/cases/${caseId}`, { token: cm })).json()) as { status: string }).status;

it('refuses to write before assignment and to sign without a draft (409 naming the state)', async () => {
  const early = await openCaseIn(svc, cm, 'records_complete');
  const res = await svc.request('PUT', `/api/cases/${early}/opinion`, { token: specialist, body: opinionFor(referredIntake()) });
  expect(res.status).toBe(409);
  expect(await res.text()).toContain('records_complete');
  const assigned = await openCaseIn(svc, cm, 'assigned');
  expect((await svc.request('POST', `/api/cases/${assigned}/opinion/sign`, { token: specialist })).status).toBe(409);
  expect((await svc.request('GET', `/api/cases/${assigned}/report.pdf`, { token: cm })).status).toBe(404);
  const bad = await svc.request('PUT', `/api/cases/${assigned}/opinion`, { token: specialist, body: { ...opinionFor(referredIntake()), summary: '' } });
  expect(bad.status).toBe(400);
  expect(((await bad.json()) as { errors: { field: string }[] }).errors[0]?.field).toBe('summary');
});

it('signs versions: an amendment before delivery goes back to in_review and signs version 2 (amended)', async () => {
  const intake = referredIntake({ patient: { ...referredIntake().patient, name: { given: ['小明'], family: '王' } } });
  const caseId = await openCaseIn(svc, cm, 'assigned', intake);
  expect((await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: { ...opinionFor(intake), specialist: { name: 'Dr. Adán Ruiz' } } })).status).toBe(200);
  expect(await status(caseId)).toBe('in_review');
  expect((await svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token: specialist })).status).toBe(201);
  expect(await status(caseId)).toBe('report_signed');
  // Nothing new to sign.
  expect((await svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token: specialist })).status).toBe(409);
  const v1 = Buffer.from(await (await svc.request('GET', `/api/cases/${caseId}/report.pdf`, { token: cm })).arrayBuffer());
  const text = (await pdfText(v1)).replace(/\s+/g, ' ');
  expect(text).toContain('小明 王');
  expect(text).toContain('Dr. Adán Ruiz');
  expect((await PDFDocument.load(v1)).getTitle()).toBe(`Second opinion report, case ${caseId}, version 1`);

  expect((await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: opinionFor(intake, { summary: 'Corrected summary.' }) })).status).toBe(200);
  expect(await status(caseId)).toBe('in_review');
  const signed = await svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token: specialist });
  const body = (await signed.json()) as { current: { version: number; status: string; content: { summary: string } }; versions: unknown[] };
  expect(body.current).toMatchObject({ version: 2, status: 'amended', content: { summary: 'Corrected summary.' } });
  expect(body.versions).toHaveLength(2);
  const v2 = await svc.request('GET', `/api/cases/${caseId}/report.pdf?version=2`, { token: specialist });
  expect(v2.headers.get('x-report-version')).toBe('2');
  expect(await pdfText(Buffer.from(await v2.arrayBuffer()))).toContain('Corrected summary.');
  expect((await svc.request('GET', `/api/cases/${caseId}/report.pdf?version=3`, { token: cm })).status).toBe(404);
});

it('takes the name and NPI from the specialist directory and refuses another specialist when the case is assigned', async () => {
  const caseId = await openCaseIn(svc, cm, 'assigned');
  const specialistId = randomUUID();
  await svc.service.db.query(`INSERT INTO specialists (id, npi, name, specialty_codes, user_sub) VALUES ($1, '1245319599', $2, ARRAY['endocrinology'], 'spec-dir')`, [
    specialistId,
    JSON.stringify({ family: 'Okafor', given: ['Chiamaka'], prefix: ['Dr.'] }),
  ]);
  await svc.service.db.query(`INSERT INTO assignments (id, case_id, specialist_id, method, assigned_by, assigned_at) VALUES ($1, $2, $3, 'named', 'cm-op', now())`, [
    randomUUID(),
    caseId,
    specialistId,
  ]);
  const other = await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: opinionFor(referredIntake()) });
  expect(other.status).toBe(403);
  const own = await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: await svc.token('specialist', 'spec-dir'), body: opinionFor(referredIntake()) });
  expect(own.status).toBe(200);
  expect(((await own.json()) as { draft: { specialist: unknown } }).draft.specialist).toEqual({ sub: 'spec-dir', name: 'Dr. Chiamaka Okafor', npi: '1245319599' });
});
