import type { DiagnosticReport, Patient } from 'fhir/r4';
import type { Intake } from '../../src/cases/intake-schema';
import { REPORT_IDENTIFIER_SYSTEM } from '../../src/delivery/report-resources';
import { startSandboxServer, type LoadInput, type SandboxServer, type SandboxServerOptions } from '../../src/sandbox';
import type { ServiceOverrides } from '../../src/service';
import { fixtureBundle } from './fixture-child';
import { openCaseIn, opinionFor, referredIntake, searchSandbox } from './opinion-case';
import { registerOpenEndpoint } from './sandbox-case';
import { eventually, FAST_CLIENT, startTestService, type TestService } from './service';

/** The service settings of delivery tests: retries 50 ms apart, three attempts, notifications polled every 200 ms. */
export const FAST_DELIVERY_ENV: Readonly<Record<string, string>> = { DELIVERY_BACKOFF_MS: '50', DELIVERY_ATTEMPTS: '3', NOTIFY_POLL_MS: '200' };

/** How {@link startServiceAndReferringEhr} starts the service and the referring EHR. */
export interface ServiceAndReferringEhrOptions {
  /** The service's settings (`startTestService`'s `env`); none by default. */
  readonly env?: Record<string, string>;
  /** The service's overrides; {@link FAST_CLIENT} by default. */
  readonly overrides?: ServiceOverrides;
  /** Over the referring EHR's own options: named `referring-ehr`, open (no auth), offset paging. */
  readonly ehr?: Partial<SandboxServerOptions>;
  /** Loaded into the EHR after the fixture world (other patients, other reports…). */
  readonly load?: LoadInput;
}

/** The real service and a sandbox referring EHR, started side by side. */
export interface ServiceAndReferringEhr {
  readonly svc: TestService;
  readonly ehr: SandboxServer;
  /** Stops both. */
  stop(): Promise<void>;
}

/**
 * A sandbox referring EHR holding the fixture world (`referring-ehr`): named `referring-ehr`, open (no
 * auth), offset paging, as `options` do not say otherwise.
 */
export async function startReferringEhr(options: Partial<SandboxServerOptions> = {}): Promise<SandboxServer> {
  const ehr = await startSandboxServer({ name: 'referring-ehr', auth: 'none', paging: 'offset', ...options });
  try {
    await ehr.load(fixtureBundle('referring-ehr'));
  } catch (err) {
    await ehr.stop();
    throw err;
  }
  return ehr;
}

/**
 * Starts the real service and a {@link startReferringEhr} side by side, and loads `load` into the EHR.
 * Nothing is registered: the test registers the EHR as it needs.
 */
export async function startServiceAndReferringEhr(options: ServiceAndReferringEhrOptions = {}): Promise<ServiceAndReferringEhr> {
  const [svc, ehr] = await Promise.all([startTestService(options.env ?? {}, options.overrides ?? FAST_CLIENT), startReferringEhr(options.ehr)]);
  const stop = async (): Promise<void> => {
    await Promise.all([svc.stop(), ehr.stop()]);
  };
  if (options.load) {
    await ehr.load(options.load).catch(async (err: unknown) => {
      await stop();
      throw err;
    });
  }
  return { svc, ehr, stop };
}

/**
 * Registers `ehr` as an endpoint named `EHR` (open, the service's default limits) and opens a case in
 * `assigned` for the referred fixture child with it as the one recipient and the opinion of the
 * specialist `specialistSub` saved: ready to sign. The case, its intake, and the tokens of the case
 * manager (the default subject) and the specialist.
 */
export async function caseReadyToSign(svc: TestService, ehr: SandboxServer, specialistSub: string): Promise<{ caseId: string; intake: Intake; cm: string; specialist: string }> {
  const admin = await svc.token('admin');
  const cm = await svc.token('case_manager');
  const specialist = await svc.token('specialist', specialistSub);
  const endpoint = (await (
    await svc.request('POST', '/api/endpoints', { token: admin, body: { name: 'EHR', baseUrl: ehr.baseUrl, auth: { type: 'none' }, allowInsecureHttp: true } })
  ).json()) as { id: string };
  const intake = referredIntake();
  const caseId = await openCaseIn(svc, cm, 'assigned', intake);
  expect((await svc.request('POST', `/api/cases/${caseId}/recipients`, { token: cm, body: { endpointId: endpoint.id } })).status).toBe(201);
  expect((await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: opinionFor(intake) })).status).toBe(200);
  return { caseId, intake, cm, specialist };
}

/** The case's deliveries as `token` reads them (`GET /api/cases/:id/deliveries`). */
export async function listDeliveries<T = DeliveryView>(svc: TestService, token: string, caseId: string): Promise<T[]> {
  return ((await (await svc.request('GET', `/api/cases/${caseId}/deliveries`, { token })).json()) as { items: T[] }).items;
}

/**
 * The case's delivery of `version` once it is in one of `states`, as `token` reads it (the queue runs
 * deliveries; nothing pushes their end to a test); fails after `withinMs`.
 */
export async function deliveryOnceIn<T extends { version: number; state: string } = DeliveryView>(
  svc: TestService,
  token: string,
  caseId: string,
  version: number,
  states: readonly string[],
  withinMs = 60_000,
): Promise<T> {
  const all = await eventually(() => listDeliveries<T>(svc, token, caseId), (d) => d.some((x) => x.version === version && states.includes(x.state)), withinMs);
  return all.find((x) => x.version === version) as T;
}

/** A delivery as `GET /api/cases/:id/deliveries` lists it (the fields delivery tests read). */
export interface DeliveryView {
  id: string;
  recipientId: string;
  endpointId: string | null;
  mode: string | null;
  version: number;
  state: string;
  attempts: number;
  /** How many times the delivery was queued again (its job ids count them). */
  requeues?: number;
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
  /**
   * Signs version 1 of `caseId` (for `intake`, the referred fixture child by default) with its write
   * held at the EHR (a `hold` fault on the next POST), waits until the EHR holds it, and signs version
   * 2 (`followUp`) meanwhile: the hold's rule, for the caller to release and remove (done here when a
   * step fails), and version 2's delivery once listed.
   */
  amendWhileFirstWriteHeld(caseId: string, followUp: string, intake?: Intake): Promise<{ hold: number; v2: DeliveryView }>;
  /** The DiagnosticReports at the EHR carrying this case's report identifier of `version`. */
  reportsOf(caseId: string, version: number): Promise<DiagnosticReport[]>;
  stop(): Promise<void>;
}

/**
 * Starts a {@link ReferringEhrWorld}; `name` tells its tokens apart in the logs; `env` adds to the
 * service's settings ({@link FAST_DELIVERY_ENV}); `more` loads more into the EHR.
 */
export async function startReferringEhrWorld(name: string, env: Record<string, string> = {}, more: Pick<ServiceAndReferringEhrOptions, 'load'> = {}): Promise<ReferringEhrWorld> {
  const { svc, ehr, stop } = await startServiceAndReferringEhr({ env: { ...FAST_DELIVERY_ENV, ...env }, ...more });
  const cm = await svc.token('case_manager', `cm-${name}`);
  const specialist = await svc.token('specialist', `spec-${name}`);
  const endpointId = await registerOpenEndpoint(svc, 'Referring EHR', ehr.baseUrl);
  const deliveries = (caseId: string): Promise<DeliveryView[]> => listDeliveries(svc, cm, caseId);
  const sign = async (caseId: string, intake: Intake, followUp?: string): Promise<void> => {
    const saved = await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: opinionFor(intake, followUp ? { followUp } : {}) });
    if (saved.status !== 200) throw new Error(`opinion not saved: HTTP ${saved.status} ${await saved.text()}`);
    const signed = await svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token: specialist });
    if (signed.status !== 201) throw new Error(`opinion not signed: HTTP ${signed.status} ${await signed.text()}`);
  };
  return {
    svc, ehr, cm, specialist, endpointId, deliveries, stop,
    async caseWithRecipient(intake = referredIntake()) {
      const caseId = await openCaseIn(svc, cm, 'assigned', intake);
      const added = await svc.request('POST', `/api/cases/${caseId}/recipients`, { token: cm, body: { endpointId } });
      if (added.status !== 201) throw new Error(`recipient not added: HTTP ${added.status} ${await added.text()}`);
      return { caseId, recipientId: ((await added.json()) as { id: string }).id };
    },
    until: (caseId, version, states, withinMs) => deliveryOnceIn(svc, cm, caseId, version, states, withinMs),
    sign,
    async amendWhileFirstWriteHeld(caseId, followUp, intake = referredIntake()) {
      const hold = ehr.faults.add({ match: 'POST *', action: { kind: 'hold' }, nth: 1 });
      try {
        await sign(caseId, intake);
        await eventually(async () => ehr.faults.rule(hold)?.fired ?? 0, (n) => n === 1, 30_000);
        await sign(caseId, intake, followUp);
        const v2 = (await eventually(() => deliveries(caseId), (d) => d.some((x) => x.version === 2), 30_000)).find((x) => x.version === 2) as DeliveryView;
        return { hold, v2 };
      } catch (err) {
        ehr.faults.release(hold);
        ehr.faults.remove(hold);
        throw err;
      }
    },
    reportsOf: (caseId, version) => searchSandbox<DiagnosticReport>(ehr, 'none', 'DiagnosticReport', { identifier: `${REPORT_IDENTIFIER_SYSTEM}|${caseId}-v${version}` }),
  };
}

/** Reports in a chart that are not ours (no identifier of ours): what makes a lenient recipient's answer long. */
export const otherReports = (patientId: string, n: number): DiagnosticReport[] =>
  Array.from({ length: n }, (_, i) => ({ resourceType: 'DiagnosticReport', id: `${patientId}-other-${i}`, status: 'final', code: { text: 'Other report' }, subject: { reference: `Patient/${patientId}` } }));

/**
 * A Patient at the referring EHR shaped like the referred fixture child (active, female, her birth
 * date), named `name`, with `extra` over that: a record that does or does not stand for her there.
 */
export const childLookAlike = (id: string, name: { family: string; given: string[] }, extra: Partial<Patient> = {}): Patient => ({
  resourceType: 'Patient',
  id,
  active: true,
  name: [name],
  gender: 'female',
  birthDate: referredIntake().patient.birthDate,
  ...extra,
});
