import type { ServiceOverrides } from '../../src/service';
import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { fixtureBundle, fixtureIntake, fixturePatientId } from './fixture-child';
import { FAST_CLIENT, startTestService, type TestService } from './service';

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

/**
 * Opens a case from `intake` with the record of patient `patientId` at `endpointId` as its one source
 * (both must be accepted).
 */
export async function openCaseWithSource(svc: TestService, cm: string, endpointId: string, intake: unknown, patientId: string): Promise<{ caseId: string; sourceId: string }> {
  const opened = await svc.request('POST', '/api/cases', { token: cm, body: intake });
  if (opened.status !== 201) throw new Error(`case not opened: HTTP ${opened.status}`);
  const { id } = (await opened.json()) as { id: string };
  const res = await svc.request('POST', `/api/cases/${id}/sources`, { token: cm, body: { endpointId, patient: { id: patientId } } });
  if (res.status !== 201) throw new Error(`source not added: HTTP ${res.status}`);
  return { caseId: id, sourceId: ((await res.json()) as { id: string }).id };
}

/** Opens a case for the fixture child with care team A's record of her at `endpointId` as its one source. */
export async function openFixtureCase(svc: TestService, cm: string, endpointId: string): Promise<{ caseId: string; sourceId: string }> {
  return openCaseWithSource(svc, cm, endpointId, fixtureIntake(), fixturePatientId('care-team-a'));
}

/** Starts a record pull of the case (it must be accepted, 202); its id. */
export async function startCasePull(svc: TestService, cm: string, caseId: string): Promise<string> {
  const res = await svc.request('POST', `/api/cases/${caseId}/pulls`, { token: cm, body: {} });
  if (res.status !== 202) throw new Error(`pull not started: HTTP ${res.status} ${await res.text()}`);
  return ((await res.json()) as { pullId: string }).pullId;
}

/**
 * Has the endpoint searched per type: its `$everything` switched off, as if its CapabilityStatement
 * did not offer it (the sandbox does).
 */
export async function searchPerType(svc: TestService, endpointId: string): Promise<void> {
  await svc.service.db.query(`UPDATE endpoints SET capabilities = jsonb_set(capabilities, '{patientEverything}', 'false') WHERE id = $1`, [endpointId]);
}

/** How {@link startCareTeamAWorld} sets care team A up. */
export interface CareTeamAOptions {
  /** Resources a page the sandbox sends, by default and at most. */
  readonly pageSize: number;
  /** The requests at a time the endpoint is registered with. */
  readonly maxConcurrency: number;
}

/** The real service and care team A's sandbox EHR holding the fixture child, registered as an open endpoint; a case manager's token. */
export interface CareTeamAWorld {
  readonly svc: TestService;
  readonly server: SandboxServer;
  readonly endpointId: string;
  readonly cm: string;
  stop(): Promise<void>;
}

/** Starts a {@link CareTeamAWorld}: the service with `env` and `overrides` (as `startTestService`), care team A as `options` say. */
export async function startCareTeamAWorld(env: Record<string, string>, overrides: ServiceOverrides, options: CareTeamAOptions): Promise<CareTeamAWorld> {
  const [svc, server] = await Promise.all([
    startTestService(env, overrides),
    startSandboxServer({ name: 'care-team-a', auth: 'none', defaultCount: options.pageSize, maxCount: options.pageSize }),
  ]);
  await server.load(fixtureBundle('care-team-a'));
  const [cm, endpointId] = await Promise.all([
    svc.token('case_manager'),
    registerOpenEndpoint(svc, 'care-team-a', server.baseUrl, { maxConcurrency: options.maxConcurrency }),
  ]);
  return {
    svc, server, endpointId, cm,
    async stop() {
      await Promise.all([server.stop(), svc.stop()]);
    },
  };
}

/**
 * The real service (quick client retries, {@link FAST_CLIENT}) and care team A's sandbox EHR (open,
 * offset paging) holding the fixture child, started side by side; nothing registered.
 */
export async function startServiceAndCareTeamA(): Promise<{ svc: TestService; teamA: SandboxServer; stop(): Promise<void> }> {
  const [svc, teamA] = await Promise.all([startTestService({}, FAST_CLIENT), startSandboxServer({ name: 'care-team-a', auth: 'none', paging: 'offset' })]);
  const stop = async (): Promise<void> => {
    await Promise.all([svc.stop(), teamA.stop()]);
  };
  await teamA.load(fixtureBundle('care-team-a')).catch(async (err: unknown) => {
    await stop();
    throw err;
  });
  return { svc, teamA, stop };
}
