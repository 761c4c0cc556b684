import type { Bundle } from 'fhir/r4';
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
