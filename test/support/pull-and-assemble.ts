import type { Bundle } from 'fhir/r4';
import { intakeForChild } from './intake';
import { eventually, type TestService } from './service';

/**
 * Starts a pull of the case's records through the API and waits for the bundle version it assembled;
 * returns that bundle (the pull must end complete).
 */
export async function pullAndAssemble(svc: TestService, token: string, caseId: string): Promise<Bundle> {
  const started = await svc.request('POST', `/api/cases/${caseId}/pulls`, { token, body: {} });
  expect(started.status).toBe(202);
  const { pullId } = (await started.json()) as { pullId: string };
  const pull = await eventually(
    async () => (await (await svc.request('GET', `/api/cases/${caseId}/pulls/${pullId}`, { token })).json()) as { state: string; assembledVersion: number | null },
    (p) => p.state === 'failed' || p.state === 'partial' || p.assembledVersion !== null,
    60_000,
  );
  expect(pull.state).toBe('complete');
  const res = await svc.request('GET', `/api/cases/${caseId}/bundle?version=${pull.assembledVersion ?? ''}`, { token });
  expect(res.status).toBe(200);
  return (await res.json()) as Bundle;
}

/**
 * Registers the EHR at `baseUrl` (auth none) and opens a case for Ada Quill (2016-01-02) with that EHR
 * as its source, the patient matched (`p1` there). Returns the case id.
 */
export async function openCaseAtEndpoint(svc: TestService, cm: string, ehr: { name: string; baseUrl: string }): Promise<string> {
  const endpoint = await svc.request('POST', '/api/endpoints', {
    token: await svc.token('admin'),
    body: { name: ehr.name, baseUrl: ehr.baseUrl, auth: { type: 'none' }, allowInsecureHttp: true, maxRequestsPerSecond: 1000 },
  });
  expect(endpoint.status).toBe(201);
  const { id: endpointId } = (await endpoint.json()) as { id: string };
  const { id: caseId } = (await (await svc.request('POST', '/api/cases', { token: cm, body: intakeForChild('Ada', 'Quill', '2016-01-02') })).json()) as { id: string };
  const source = await svc.request('POST', `/api/cases/${caseId}/sources`, { token: cm, body: { endpointId, patient: { match: true } } });
  expect(await source.json()).toMatchObject({ state: 'resolved', remotePatientId: 'p1' });
  return caseId;
}
