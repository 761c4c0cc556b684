import type { SandboxServer } from '../../src/sandbox';
import { fixturePatientId } from '../support/fixture-child';
import { startForFile } from '../support/for-file';
import { referredIntake } from '../support/opinion-case';
import { refuseWrites } from '../support/pg-fault';
import { registerOpenEndpoint, openCaseWithSource, startServiceAndCareTeamA } from '../support/sandbox-case';
import { eventually, type TestService } from '../support/service';

/**
 * A specialist's re-pull request and its pull commit together: a request that cannot be recorded
 * starts no pull (before, the pull was started in a transaction of its own and ran on, answering no
 * request, the SLA clock not paused and the timeline silent), and one recorded always has its pull.
 * Real service, PostgreSQL (a real refused write), Redis and care team A's sandbox EHR.
 */
let svc: TestService;
let teamA: SandboxServer;

startForFile(() => startServiceAndCareTeamA(), (started) => ({ svc, teamA } = started));

const pullsOf = async (caseId: string): Promise<string[]> =>
  (await svc.service.db.query<{ id: string }>('SELECT id FROM pulls WHERE case_id = $1', [caseId])).rows.map((r) => r.id);
const statusOf = async (caseId: string): Promise<string> =>
  (await svc.service.db.query<{ status: string }>('SELECT status FROM cases WHERE id = $1', [caseId])).rows[0]?.status ?? 'missing';

it('starts no pull when the request cannot be recorded, and its pull with it once it can', async () => {
  const [cm, specialist] = await Promise.all([svc.token('case_manager'), svc.token('specialist', 'dr-atomic')]);
  const endpointId = await registerOpenEndpoint(svc, 'Care team A', teamA.baseUrl);
  const { caseId } = await openCaseWithSource(svc, cm, endpointId, referredIntake(), fixturePatientId('care-team-a'));
  // Assignment (payment, specialist) is covered elsewhere; the review starts here.
  await svc.service.db.query(`UPDATE cases SET status = 'assigned', revision = revision + 1 WHERE id = $1`, [caseId]);
  const ask = (): Promise<Response> => svc.request('POST', `/api/cases/${caseId}/information-requests`, { token: specialist, body: { kind: 're-pull', resourceTypes: ['Observation'] } });

  const fault = await refuseWrites(svc.service.db, { name: 'info_request', table: 'information_requests', operation: 'INSERT', when: 'true' });
  try {
    expect((await ask()).status).toBe(500);
    expect(await fault.refusals()).toBe(1);
  } finally {
    await fault.remove();
  }
  expect(await pullsOf(caseId)).toEqual([]);
  expect(await statusOf(caseId)).toBe('assigned');

  const asked = await ask();
  expect(asked.status).toBe(201);
  const { pullId } = (await asked.json()) as { pullId: string };
  expect(await pullsOf(caseId)).toEqual([pullId]);
  expect(await statusOf(caseId)).toBe('awaiting_information');
  // The pull answers the request once its records are in the bundle.
  await eventually(async () => statusOf(caseId), (s) => s === 'in_review', 60_000);
}, 120_000);
