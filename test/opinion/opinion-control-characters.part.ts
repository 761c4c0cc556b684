import { openCaseIn, opinionFor, referredIntake } from '../support/opinion-case';
import { startTestService, type TestService } from '../support/service';

/**
 * `PUT /api/cases/:id/opinion` refuses the control characters a FHIR string cannot hold
 * (https://hl7.org/fhir/R4/datatypes.html#string): the report would be refused by the recipient's
 * server on every delivery attempt. Tab, CR and LF are text.
 */
let svc: TestService;
let cm: string;
let specialist: string;

beforeAll(async () => {
  svc = await startTestService();
  cm = await svc.token('case_manager', 'cm-ctl');
  specialist = await svc.token('specialist', 'spec-ctl');
});
afterAll(async () => {
  await svc.stop();
});

interface Problem {
  detail: string;
  errors: { field: string; pointer: string; detail: string }[];
}

it('refuses a vertical tab (pasted from a word processor) with 400 naming the field and the character', async () => {
  const intake = referredIntake();
  const caseId = await openCaseIn(svc, cm, 'assigned', intake);
  const res = await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: opinionFor(intake, { summary: 'First line\u000Bsecond line' }) });
  expect(res.status).toBe(400);
  const problem = (await res.json()) as Problem;
  expect(problem.errors).toEqual([expect.objectContaining({ field: 'summary', pointer: '#/summary', detail: expect.stringContaining('U+000B') })]);
  // Nothing was saved.
  const read = (await (await svc.request('GET', `/api/cases/${caseId}/opinion`, { token: specialist })).json()) as { draft: unknown };
  expect(read.draft ?? null).toBeNull();
});

it('names each field holding one: an answer, the follow-up, the specialist name (form feed, U+0001, U+001F)', async () => {
  const intake = referredIntake();
  const caseId = await openCaseIn(svc, cm, 'assigned', intake);
  const body = opinionFor(intake, { followUp: 'Review\fin 3 months' });
  const answers = body.answers.map((a, i) => (i === 0 ? { ...a, answer: `Yes\u0001 a pump` } : a));
  const res = await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: { ...body, answers, specialist: { name: 'Dr. A\u001FRuiz' } } });
  expect(res.status).toBe(400);
  const fields = ((await res.json()) as Problem).errors.map((e) => e.field).sort();
  expect(fields).toEqual(['answers.0.answer', 'followUp', 'specialist.name']);
});

it('takes tab, CR, LF and DEL (a FHIR string allows them)', async () => {
  const intake = referredIntake();
  const caseId = await openCaseIn(svc, cm, 'assigned', intake);
  const summary = 'Line one\r\nLine two\n\tIndented\u007F';
  const res = await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: opinionFor(intake, { summary }) });
  expect(res.status).toBe(200);
  expect(((await res.json()) as { draft: { content: { summary: string } } }).draft.content.summary).toBe(summary);
});
