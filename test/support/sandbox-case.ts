import { fixtureIntake, fixturePatientId } from './fixture-child';
import type { TestService } from './service';

/** The limits an endpoint is registered with (the service's defaults where absent). */
export interface EndpointLimits {
  readonly maxRequestsPerSecond?: number;
  readonly maxConcurrency?: number;
}

/**
 * Registers a sandbox EHR (loopback, plain http, no auth) as an endpoint, as an admin would; its id.
 * The registration must succeed.
 */
export async function registerOpenEndpoint(svc: TestService, name: string, baseUrl: string, limits: EndpointLimits = {}): Promise<string> {
  const res = await svc.request('POST', '/api/endpoints', {
    token: await svc.token('admin'),
    body: { name, baseUrl, auth: { type: 'none' }, allowInsecureHttp: true, maxRequestsPerSecond: limits.maxRequestsPerSecond ?? 1000, ...limits },
  });
  if (res.status !== 201) throw new Error(`endpoint ${name} not registered: HTTP ${res.status} ${await res.text()}`);
  return ((await res.json()) as { id: string }).id;
}

/** Opens a case for the fixture child with care team A's record of her at `endpointId` as its one source. */
export async function openFixtureCase(svc: TestService, cm: string, endpointId: string): Promise<{ caseId: string; sourceId: string }> {
  const opened = await svc.request('POST', '/api/cases', { token: cm, body: fixtureIntake() });
  if (opened.status !== 201) throw new Error(`case not opened: HTTP ${opened.status}`);
  const { id } = (await opened.json()) as { id: string };
  const res = await svc.request('POST', `/api/cases/${id}/sources`, { token: cm, body: { endpointId, patient: { id: fixturePatientId('care-team-a') } } });
  if (res.status !== 201) throw new Error(`source not added: HTTP ${res.status}`);
  return { caseId: id, sourceId: ((await res.json()) as { id: string }).id };
}

/** Starts a record pull of the case (it must be accepted, 202); its id. */
export async function startCasePull(svc: TestService, cm: string, caseId: string): Promise<string> {
  const res = await svc.request('POST', `/api/cases/${caseId}/pulls`, { token: cm, body: {} });
  if (res.status !== 202) throw new Error(`pull not started: HTTP ${res.status} ${await res.text()}`);
  return ((await res.json()) as { pullId: string }).pullId;
}
