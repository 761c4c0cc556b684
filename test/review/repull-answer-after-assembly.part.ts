import { loadDomainData } from '../../src/cases/domain-data';
import type { CaseServiceDeps } from '../../src/cases/case-service';
import { pullAssemblyTrigger } from '../../src/pull/pull-progress';
import { answerRequestsOfAssembledPull } from '../../src/review/information-request-answers';
import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { fixtureBundle, fixturePatientId } from '../support/fixture-child';
import { referredIntake } from '../support/opinion-case';
import { registerOpenEndpoint } from '../support/sandbox-case';
import { startTestService, type TestService } from '../support/service';

/**
 * A specialist's re-pull request is answered ("the new records are in the case bundle") only once
 * the re-pull's records are in the bundle. The pull's parent job answers it after assembling; a
 * request committed after the job looked is answered by the request itself — but only when that
 * assembly is stored. Answering as soon as the pull had ended resumed the review, and the SLA clock,
 * while its records were still being assembled.
 *
 * An API-only service (no workers run the pull): the test sets the pull's end and its bundle version
 * itself, one step at a time, as the parent job would.
 */
let svc: TestService;
let teamA: SandboxServer;
let deps: CaseServiceDeps;

beforeAll(async () => {
  [svc, teamA] = await Promise.all([startTestService({ ROLE: 'api' }), startSandboxServer({ name: 'care-team-a', auth: 'none' })]);
  await teamA.load(fixtureBundle('care-team-a'));
  deps = { db: svc.service.db, config: svc.config, domain: loadDomainData() };
}, 60_000);

afterAll(async () => {
  await Promise.all([svc.stop(), teamA.stop()]);
});

it('answers a re-pull request that outlived its pull only once the pull is assembled', async () => {
  const [cm, specialist] = await Promise.all([svc.token('case_manager'), svc.token('specialist', 'dr-answer-after-assembly')]);
  const endpointId = await registerOpenEndpoint(svc, 'Care team A', teamA.baseUrl);
  const { id: caseId } = (await (await svc.request('POST', '/api/cases', { token: cm, body: referredIntake() })).json()) as { id: string };
  expect((await svc.request('POST', `/api/cases/${caseId}/sources`, { token: cm, body: { endpointId, patient: { id: fixturePatientId('care-team-a') } } })).status).toBe(201);
  await svc.service.db.query(`UPDATE cases SET status = 'assigned', revision = revision + 1 WHERE id = $1`, [caseId]);
  const asked = await svc.request('POST', `/api/cases/${caseId}/information-requests`, { token: specialist, body: { kind: 're-pull', resourceTypes: ['Observation'] } });
  expect(asked.status).toBe(201);
  const { id: requestId, pullId } = (await asked.json()) as { id: string; pullId: string };
  const stateOfRequest = async (): Promise<string | undefined> =>
    ((await (await svc.request('GET', `/api/cases/${caseId}/information-requests`, { token: cm })).json()) as { items: { id: string; state: string }[] }).items.find(
      (r) => r.id === requestId,
    )?.state;

  // The pull has ended (its parent job's first step) and is being assembled: nothing to answer yet.
  await svc.service.db.query(`UPDATE pulls SET state = 'complete', finished_at = now() WHERE id = $1`, [pullId]);
  expect(await answerRequestsOfAssembledPull(deps, pullId)).toBe(0);
  expect(await stateOfRequest()).toBe('open');
  expect(((await (await svc.request('GET', `/api/cases/${caseId}`, { token: cm })).json()) as { status: string }).status).toBe('awaiting_information');

  // Its bundle version is stored: now the records are in the bundle, and the request is answered.
  await svc.service.db.query(
    `INSERT INTO case_bundles (case_id, version, bundle_id, bundle, report, options, trigger) VALUES ($1, 1, 'bundle-1', NULL, '{}', '{}', $2)`,
    [caseId, pullAssemblyTrigger(pullId, 1)],
  );
  expect(await answerRequestsOfAssembledPull(deps, pullId)).toBe(1);
  expect(await stateOfRequest()).toBe('answered');
  expect(((await (await svc.request('GET', `/api/cases/${caseId}`, { token: cm })).json()) as { status: string }).status).toBe('in_review');
  // Once: the parent job answering too changes nothing.
  expect(await answerRequestsOfAssembledPull(deps, pullId)).toBe(0);
}, 60_000);
