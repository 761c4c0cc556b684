import { openCaseIn } from '../support/opinion-case';
import { startTestService, type TestService } from '../support/service';

/** Version numbers in queries: a bad one is a 400 naming the field, never a database error (500). */
let svc: TestService;
let cm: string;
let caseId: string;

beforeAll(async () => {
  svc = await startTestService();
  cm = await svc.token('case_manager', 'cm-versions');
  caseId = await openCaseIn(svc, cm, 'assigned');
  expect((await svc.request('POST', `/api/cases/${caseId}/bundle/rebuild`, { token: cm, body: {} })).status).toBe(201);
});
afterAll(async () => {
  await svc.stop();
});

const ROUTES: readonly [string, string][] = [
  ['bundle', 'version'],
  ['bundle/summary', 'version'],
  ['report.pdf', 'version'],
  ['bundle/changes', 'from'],
  ['bundle/changes', 'to'],
];

it.each(ROUTES)('GET …/%s refuses a bad %s with 400 naming it', async (route, field) => {
  for (const [value, detail] of [
    ['3000000000', 'at most 2147483647'], // beyond PostgreSQL's integer: it reached the database (500) before
    ['abc', 'a version number'],
    ['1.5', 'a version number: a whole number from 1'],
    // Number() reads these as 16, 1000, 5 and 0: each named a version that was never asked for.
    ['0x10', 'a version number'],
    ['1e3', 'a version number'],
    ['%205', 'a version number'],
    ['', 'a version number'],
    ['0', '1 or more'],
  ] as const) {
    const res = await svc.request('GET', `/api/cases/${caseId}/${route}?${field}=${value}`, { token: cm });
    expect({ value, status: res.status }).toEqual({ value, status: 400 });
    expect(await res.text()).toContain(`${field} must be ${detail}`);
  }
});

it('answers 404 for a version in range that does not exist', async () => {
  for (const route of ['bundle', 'bundle/summary', 'report.pdf']) {
    expect((await svc.request('GET', `/api/cases/${caseId}/${route}?version=2147483647`, { token: cm })).status).toBe(404);
  }
});
