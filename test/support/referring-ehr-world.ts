import type { DiagnosticReport } from 'fhir/r4';
import type { Intake } from '../../src/cases/intake-schema';
import { REPORT_IDENTIFIER_SYSTEM } from '../../src/delivery/report-resources';
import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { fixtureBundle } from './fixture-child';
import { openCaseIn, opinionFor, referredIntake, searchSandbox } from './opinion-case';
import { registerOpenEndpoint } from './sandbox-case';
import { eventually, FAST_CLIENT, startTestService, type TestService } from './service';

/** A delivery as `GET /api/cases/:id/deliveries` lists it (the fields delivery tests read). */
export interface DeliveryView {
  id: string;
  recipientId: string;
  version: number;
  state: string;
  attempts: number;
  remoteIds: Record<string, string>;
  lastError: string | null;
  reviewReason: string | null;
  reviewCode: string | null;
  candidates: { id: string }[];
  inDoubt: boolean;
}

/**
 * The real service (fast delivery retries) and a sandbox referring EHR holding the fixture world,
 * registered as an open endpoint; a case manager's and a specialist's tokens; and what delivery
 * tests do with them.
 */
export interface ReferringEhrWorld {
  readonly svc: TestService;
  readonly ehr: SandboxServer;
  readonly cm: string;
  readonly specialist: string;
  readonly endpointId: string;
  /** A case in `assigned` for `intake` (default: the referred fixture child) with the referring EHR as its recipient. */
  caseWithRecipient(intake?: Intake): Promise<{ caseId: string; recipientId: string }>;
  /** The case's deliveries, as the case manager reads them. */
  deliveries(caseId: string): Promise<DeliveryView[]>;
  /** The delivery of `version` once it is in one of `states` (the queue runs it; nothing pushes its end). */
  until(caseId: string, version: number, states: string[], withinMs?: number): Promise<DeliveryView>;
  /** The specialist saves the opinion (with `followUp`, for an amendment) and signs it. */
  sign(caseId: string, intake: Intake, followUp?: string): Promise<void>;
  /** The DiagnosticReports at the EHR carrying this case's report identifier of `version`. */
  reportsOf(caseId: string, version: number): Promise<DiagnosticReport[]>;
  stop(): Promise<void>;
}

/** Starts a {@link ReferringEhrWorld}; `name` tells its tokens apart in the logs; `env` adds to the service's settings. */
export async function startReferringEhrWorld(name: string, env: Record<string, string> = {}): Promise<ReferringEhrWorld> {
  const [svc, ehr] = await Promise.all([
    startTestService({ DELIVERY_BACKOFF_MS: '50', DELIVERY_ATTEMPTS: '3', NOTIFY_POLL_MS: '200', ...env }, FAST_CLIENT),
    startSandboxServer({ name: 'referring-ehr', auth: 'none', paging: 'offset' }),
  ]);
  await ehr.load(fixtureBundle('referring-ehr'));
  const cm = await svc.token('case_manager', `cm-${name}`);
  const specialist = await svc.token('specialist', `spec-${name}`);
  const endpointId = await registerOpenEndpoint(svc, 'Referring EHR', ehr.baseUrl);
  const deliveries = async (caseId: string): Promise<DeliveryView[]> =>
    ((await (await svc.request('GET', `/api/cases/${caseId}/deliveries`, { token: cm })).json()) as { items: DeliveryView[] }).items;
  return {
    svc, ehr, cm, specialist, endpointId, deliveries,
    async caseWithRecipient(intake = referredIntake()) {
      const caseId = await openCaseIn(svc, cm, 'assigned', intake);
      const added = await svc.request('POST', `/api/cases/${caseId}/recipients`, { token: cm, body: { endpointId } });
      if (added.status !== 201) throw new Error(`recipient not added: HTTP ${added.status} ${await added.text()}`);
      return { caseId, recipientId: ((await added.json()) as { id: string }).id };
    },
    async until(caseId, version, states, withinMs = 60_000) {
      const all = await eventually(() => deliveries(caseId), (d) => d.some((x) => x.version === version && states.includes(x.state)), withinMs);
      return all.find((x) => x.version === version) as DeliveryView;
    },
    async sign(caseId, intake, followUp) {
      const saved = await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: opinionFor(intake, followUp ? { followUp } : {}) });
      if (saved.status !== 200) throw new Error(`opinion not saved: HTTP ${saved.status} ${await saved.text()}`);
      const signed = await svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token: specialist });
      if (signed.status !== 201) throw new Error(`opinion not signed: HTTP ${signed.status} ${await signed.text()}`);
    },
    reportsOf: (caseId, version) => searchSandbox<DiagnosticReport>(ehr, 'none', 'DiagnosticReport', { identifier: `${REPORT_IDENTIFIER_SYSTEM}|${caseId}-v${version}` }),
    async stop() {
      await Promise.all([svc.stop(), ehr.stop()]);
    },
  };
}

/** Reports in a chart that are not ours (no identifier of ours): what makes a lenient recipient's answer long. */
export const otherReports = (patientId: string, n: number): DiagnosticReport[] =>
  Array.from({ length: n }, (_, i) => ({ resourceType: 'DiagnosticReport', id: `${patientId}-other-${i}`, status: 'final', code: { text: 'Other report' }, subject: { reference: `Patient/${patientId}` } }));
