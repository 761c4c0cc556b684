import type { SandboxServer } from '../../src/sandbox';
import type { DrillService } from './drill-service';
import { fixtureIntake } from './fixtures';
import { eventually } from './poll';

/** A pull's progress as the API reports it (the fields the drills read). */
export interface PullView {
  readonly state: string;
  readonly totals: { readonly pages: number; readonly resources: number; readonly retries: number; readonly attachmentsFound: number; readonly attachmentsFetched: number; readonly attachmentsFailed: number };
  readonly failedSources: readonly { readonly sourceId: string; readonly endpointName: string }[];
}

export const FINISHED_STATES: readonly string[] = ['complete', 'partial', 'failed'];

/** Registers a sandbox server as an endpoint (auth none, loopback allowed, no rate limit to speak of). */
export async function registerSandbox(svc: DrillService, server: SandboxServer, extra: Record<string, unknown> = {}): Promise<string> {
  const res = await svc.request('POST', '/api/endpoints', {
    token: await svc.token('admin'),
    body: { name: server.name, baseUrl: server.baseUrl, auth: { type: 'none' }, allowInsecureHttp: true, maxRequestsPerSecond: 1000, maxConcurrency: 8, ...extra },
  });
  if (res.status !== 201) throw new Error(`registering ${server.name}: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { id: string }).id;
}

/** Opens a case for the fixture child with these sources (endpoint + patient id there). */
export async function openCase(svc: DrillService, sources: readonly { endpointId: string; patientId: string }[]): Promise<string> {
  const cm = await svc.token('case_manager');
  const created = await svc.request('POST', '/api/cases', { token: cm, body: fixtureIntake() });
  if (created.status !== 201) throw new Error(`opening a case: ${created.status} ${await created.text()}`);
  const { id } = (await created.json()) as { id: string };
  for (const s of sources) {
    const res = await svc.request('POST', `/api/cases/${id}/sources`, { token: cm, body: { endpointId: s.endpointId, patient: { id: s.patientId } } });
    if (res.status !== 201) throw new Error(`adding a source: ${res.status} ${await res.text()}`);
  }
  return id;
}

/** Starts a pull of every source of the case; its id. */
export async function startPull(svc: DrillService, caseId: string): Promise<string> {
  const res = await svc.request('POST', `/api/cases/${caseId}/pulls`, { token: await svc.token('case_manager'), body: {} });
  if (res.status !== 202) throw new Error(`starting a pull: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { pullId: string }).pullId;
}

/** The pull's state column (read straight from PostgreSQL: no API needed). */
export async function pullState(svc: DrillService, pullId: string): Promise<string> {
  const { rows } = await svc.service.db.query<{ state: string }>('SELECT state FROM pulls WHERE id = $1', [pullId]);
  return rows[0]?.state ?? 'missing';
}

/** Pages committed so far by every task of the pull. */
export async function committedPages(svc: DrillService, pullId: string): Promise<number> {
  const { rows } = await svc.service.db.query<{ n: number }>('SELECT coalesce(sum(pages), 0)::int AS n FROM pull_tasks WHERE pull_id = $1', [pullId]);
  return rows[0]?.n ?? 0;
}

/** Waits until the pull has finished (complete, partial or failed); its view from the API. */
export async function pullToEnd(svc: DrillService, caseId: string, pullId: string, timeoutMs = 120_000): Promise<PullView> {
  await eventually(`pull ${pullId} finishes`, () => pullState(svc, pullId), (s) => FINISHED_STATES.includes(s), timeoutMs);
  return pullView(svc, caseId, pullId);
}

/** The pull as the API reports it to a case manager. */
export async function pullView(svc: DrillService, caseId: string, pullId: string): Promise<PullView> {
  const res = await svc.request('GET', `/api/cases/${caseId}/pulls/${pullId}`, { token: await svc.token('case_manager') });
  if (res.status !== 200) throw new Error(`reading pull ${pullId}: ${res.status}`);
  return (await res.json()) as PullView;
}

/** Waits for the bundle the pull's parent job assembles (trigger `pull:<id>:<attempt>`); its version. */
export async function assembledVersion(svc: DrillService, caseId: string, pullId: string, attempt = 1, timeoutMs = 60_000): Promise<number> {
  return eventually(
    `bundle of pull ${pullId} assembled`,
    async () => {
      const { rows } = await svc.service.db.query<{ version: number }>('SELECT version FROM case_bundles WHERE case_id = $1 AND trigger = $2', [caseId, `pull:${pullId}:${attempt}`]);
      return rows[0]?.version ?? 0;
    },
    (v) => v > 0,
    timeoutMs,
  );
}
