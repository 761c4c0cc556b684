import { fixturePatientId } from '../support/fixture-child';
import { referredIntake } from '../support/opinion-case';
import { searchPerType } from '../support/sandbox-case';
import type { TestService } from '../support/service';

/**
 * Registers `baseUrl` as an endpoint searched per type (its `$everything` switched off), opens a case
 * on the fixture child there and starts a pull of its Observations; the case, the pull and the case
 * manager's token (to watch it).
 */
export async function startObservationPull(svc: TestService, name: string, baseUrl: string): Promise<{ caseId: string; pullId: string; cm: string }> {
  const [admin, cm] = await Promise.all([svc.token('admin'), svc.token('case_manager')]);
  const res = await svc.request('POST', '/api/endpoints', { token: admin, body: { name, baseUrl, auth: { type: 'none' }, allowInsecureHttp: true } });
  if (res.status !== 201) throw new Error(`registering ${name}: ${res.status} ${await res.text()}`);
  const endpointId = ((await res.json()) as { id: string }).id;
  await searchPerType(svc, endpointId);
  const caseId = ((await (await svc.request('POST', '/api/cases', { token: cm, body: referredIntake() })).json()) as { id: string }).id;
  const source = await svc.request('POST', `/api/cases/${caseId}/sources`, { token: cm, body: { endpointId, patient: { id: fixturePatientId('care-team-a') } } });
  if (source.status !== 201) throw new Error(`adding the source: ${source.status} ${await source.text()}`);
  const { pullId } = (await (await svc.request('POST', `/api/cases/${caseId}/pulls`, { token: cm, body: { types: ['Observation'] } })).json()) as { pullId: string };
  return { caseId, pullId, cm };
}
