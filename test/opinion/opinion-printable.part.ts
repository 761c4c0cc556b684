import { openCaseIn, opinionFor, referredIntake } from '../support/opinion-case';
import { startTestService, type TestService } from '../support/service';

/**
 * `PUT /api/cases/:id/opinion` refuses what the signed report would not show: a character no report
 * font has (it would print as "�"; README: other scripts and emoji), named with its field, and an
 * answer or section of invisible characters only (the question would print unanswered).
 */
let svc: TestService;
let cm: string;
let specialist: string;

beforeAll(async () => {
  svc = await startTestService();
  cm = await svc.token('case_manager', 'cm-print');
  specialist = await svc.token('specialist', 'spec-print');
});
afterAll(async () => {
  await svc.stop();
});

interface Problem {
  errors: { field: string; pointer: string; detail: string }[];
}

async function put(body: unknown): Promise<{ status: number; problem: Problem }> {
  const intake = referredIntake();
  const caseId = await openCaseIn(svc, cm, 'assigned', intake);
  const res = await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: typeof body === 'function' ? (body as (i: typeof intake) => unknown)(intake) : body });
  return { status: res.status, problem: (await res.json()) as Problem };
}

it('refuses Hebrew in a section and an emoji in an answer, naming each field and character', async () => {
  const { status, problem } = await put((intake: ReturnType<typeof referredIntake>) => {
    const body = opinionFor(intake, { summary: 'Seen with the family (שלום).' });
    return { ...body, answers: body.answers.map((a, i) => (i === 0 ? { ...a, answer: 'Yes 👍' } : a)) };
  });
  expect(status).toBe(400);
  expect(problem.errors).toEqual(
    expect.arrayContaining([
      expect.objectContaining({ field: 'summary', detail: expect.stringContaining('U+05E9 (ש)') }),
      expect.objectContaining({ field: 'answers.0.answer', detail: expect.stringContaining('U+1F44D') }),
    ]),
  );
  expect(problem.errors).toHaveLength(2);
});

it('refuses a specialist name the bold face cannot print', async () => {
  const { status, problem } = await put((intake: ReturnType<typeof referredIntake>) => ({ ...opinionFor(intake), specialist: { name: 'Dr. Ruiz ☺︎' } }));
  expect(status).toBe(400);
  expect(problem.errors).toEqual([expect.objectContaining({ field: 'specialist.name', detail: expect.stringContaining('U+263A') })]);
});

it('takes Korean, CJK, decomposed text and clinical notation', async () => {
  const { status } = await put((intake: ReturnType<typeof referredIntake>) =>
    opinionFor(intake, { summary: '김민준 王小明 渡辺: 45 × 10⁹/L, SpO₂ 97 %, give ⅓ of the dose ✓ — \u1112\u1161\u11AB' }),
  );
  expect(status).toBe(200);
});

it('takes a check mark with the emoji variation selector a Mac keyboard adds (printed in its text form)', async () => {
  const { status } = await put((intake: ReturnType<typeof referredIntake>) => opinionFor(intake, { summary: '\u2714\uFE0F Hepatitis B titre adequate.' }));
  expect(status).toBe(200);
});

it.each(['\u200B', '\u2060 \u00AD', '\u3164', '\u2800\uFEFF'])('refuses an answer of invisible characters only (%j), naming the answer', async (invisible) => {
  const { status, problem } = await put((intake: ReturnType<typeof referredIntake>) => {
    const body = opinionFor(intake);
    return { ...body, answers: body.answers.map((a, i) => (i === 0 ? { ...a, answer: invisible } : a)) };
  });
  expect(status).toBe(400);
  expect(problem.errors).toEqual([expect.objectContaining({ field: 'answers.0.answer', detail: expect.stringContaining('must not be empty') })]);
});

it('refuses a required section of invisible characters only', async () => {
  const { status, problem } = await put((intake: ReturnType<typeof referredIntake>) => opinionFor(intake, { followUp: '\u200B\u200C' }));
  expect(status).toBe(400);
  expect(problem.errors).toEqual([expect.objectContaining({ field: 'followUp', detail: expect.stringContaining('must not be empty') })]);
});
