import type { Communication, DiagnosticReport, DocumentReference } from 'fhir/r4';
import { REPORT_COMMUNICATION_SYSTEM, REPORT_IDENTIFIER_SYSTEM } from '../../src/delivery/report-resources';
import type { SandboxServer } from '../../src/sandbox';
import { fixturePatientId } from '../support/fixture-child';
import { startForFile } from '../support/for-file';
import { openCaseIn, opinionFor, referredIntake, searchSandbox } from '../support/opinion-case';
import { FAST_DELIVERY_ENV, listDeliveries, startServiceAndReferringEhr, type DeliveryView } from '../support/referring-ehr-world';
import { eventually, type TestService } from '../support/service';

/**
 * What the recipient refuses of a report does not keep the report out of the chart:
 * - a transaction it answers with a 4xx (nothing of it was written: https://hl7.org/fhir/R4/http.html#transaction)
 *   is followed by the same conditional creates one by one, report first; the delivery is `delivered`
 *   and the refusal is on record;
 * - a Communication it refuses for good (one by one, or after the refused transaction) is left out:
 *   the delivery is `delivered`, the refusal on record, and the case managers are told
 *   (`delivery.physician_not_told`) to let the physician know.
 *
 * Real service, PostgreSQL, Redis and a sandbox referring EHR with SMART auth: its refusals are its
 * own (a fault on `POST /`, and a token whose scopes leave Communications out: the sandbox refuses a
 * transaction holding an entry the token may not write, and such a create, with 403).
 */
let svc: TestService;
let ehr: SandboxServer;
let cm: string;
let specialist: string;

const CHILD_ID = fixturePatientId('referring-ehr');
/** A grant that lets this client read and write reports and notes, not Communications. */
const NO_COMMUNICATION = 'system/*.read system/DiagnosticReport.write system/DocumentReference.write';

type TimelineEvent = { type: string; data: Record<string, unknown> };

startForFile(() => startServiceAndReferringEhr({ env: FAST_DELIVERY_ENV, ehr: { auth: 'smart', tokenLifetimeSeconds: 3600 } }), (started) => ({ svc, ehr } = started));

beforeAll(async () => {
  cm = await svc.token('case_manager', 'cm-refusals');
  specialist = await svc.token('specialist', 'spec-refusals');
});

/** The EHR registered with a static bearer token of `scopes` (no SMART scope known to us: the EHR's answers decide); one by one where `sequential`. */
async function registerEhr(name: string, scopes: string, sequential = false): Promise<string> {
  const res = await svc.request('POST', '/api/endpoints', {
    token: await svc.token('admin'),
    body: { name, baseUrl: ehr.baseUrl, auth: { type: 'bearer', token: ehr.issueAccessToken('sob-refusals', scopes) }, allowInsecureHttp: true, maxRequestsPerSecond: 1000 },
  });
  expect(res.status).toBe(201);
  const id = ((await res.json()) as { id: string }).id;
  if (sequential) await svc.service.db.query(`UPDATE endpoints SET capabilities = jsonb_set(capabilities, '{systemInteractions}', '[]') WHERE id = $1`, [id]);
  return id;
}

async function deliveredCase(endpointId: string): Promise<{ caseId: string; delivery: DeliveryView }> {
  const intake = referredIntake();
  const caseId = await openCaseIn(svc, cm, 'assigned', intake);
  expect((await svc.request('POST', `/api/cases/${caseId}/recipients`, { token: cm, body: { endpointId } })).status).toBe(201);
  expect((await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: opinionFor(intake) })).status).toBe(200);
  expect((await svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token: specialist })).status).toBe(201);
  const all = await eventually(
    () => listDeliveries(svc, cm, caseId),
    (d) => ['delivered', 'failed', 'needs_review'].includes(d[0]?.state ?? ''),
    60_000,
  );
  return { caseId, delivery: all[0] as DeliveryView };
}

const byIdentifier = <T extends DiagnosticReport | DocumentReference | Communication>(type: string, system: string, value: string) =>
  searchSandbox<T>(ehr, 'sob-refusals', type, { identifier: `${system}|${value}` });

async function caseView(caseId: string): Promise<{ status: string; timeline: TimelineEvent[] }> {
  return (await (await svc.request('GET', `/api/cases/${caseId}`, { token: cm })).json()) as { status: string; timeline: TimelineEvent[] };
}

const notifications = (caseId: string, type: string) =>
  eventually(
    async () => ((await (await svc.request('GET', `/api/notifications?caseId=${caseId}`, { token: cm })).json()) as { items: { type: string; message: string }[] }).items,
    (items) => items.some((n) => n.type === type),
    30_000,
  );

it('writes the report one by one where the EHR refuses its transaction (4xx, a fault on POST /), and records why', async () => {
  const endpointId = await registerEhr('Referring EHR (transactions refused)', 'system/*.*');
  const refusing = ehr.faults.add({ match: 'POST /', action: { kind: 'expired-token' } });
  let result: { caseId: string; delivery: DeliveryView };
  try {
    result = await deliveredCase(endpointId);
    expect(ehr.faults.rule(refusing)?.fired).toBeGreaterThanOrEqual(1);
  } finally {
    ehr.faults.remove(refusing);
  }
  const { caseId, delivery } = result;
  expect(delivery).toMatchObject({ state: 'delivered', mode: 'sequential', attempts: 1, lastError: null });
  const [report] = await byIdentifier<DiagnosticReport>('DiagnosticReport', REPORT_IDENTIFIER_SYSTEM, `${caseId}-v1`);
  const [note] = await byIdentifier<DocumentReference>('DocumentReference', REPORT_IDENTIFIER_SYSTEM, `${caseId}-v1`);
  const [message] = await byIdentifier<Communication>('Communication', REPORT_COMMUNICATION_SYSTEM, `${caseId}-v1`);
  expect(report?.subject?.reference).toBe(`Patient/${CHILD_ID}`);
  expect(delivery.remoteIds).toEqual({ DiagnosticReport: report?.id, DocumentReference: note?.id, Communication: message?.id });
  // Exactly once each.
  for (const [type, system] of [['DiagnosticReport', REPORT_IDENTIFIER_SYSTEM], ['DocumentReference', REPORT_IDENTIFIER_SYSTEM], ['Communication', REPORT_COMMUNICATION_SYSTEM]] as const) {
    expect({ type, n: (await byIdentifier(type, system, `${caseId}-v1`)).length }).toEqual({ type, n: 1 });
  }
  const view = await caseView(caseId);
  expect(view.status).toBe('delivered');
  expect(view.timeline.find((e) => e.type === 'report_delivered')?.data).toMatchObject({
    transaction: { state: 'refused', reason: expect.stringMatching(/^the recipient refused the transaction: FHIR server answered 401/) as unknown },
  });
  expect(view.timeline.some((e) => e.type === 'physician_not_told')).toBe(false);
}, 90_000);

it('delivers the report where the EHR refuses the transaction for its Communication entry, and tells the case managers', async () => {
  const endpointId = await registerEhr('Referring EHR (Communications not granted)', NO_COMMUNICATION);
  const { caseId, delivery } = await deliveredCase(endpointId);
  expect(delivery).toMatchObject({ state: 'delivered', mode: 'sequential', attempts: 1, lastError: null });
  const [report] = await byIdentifier<DiagnosticReport>('DiagnosticReport', REPORT_IDENTIFIER_SYSTEM, `${caseId}-v1`);
  const [note] = await byIdentifier<DocumentReference>('DocumentReference', REPORT_IDENTIFIER_SYSTEM, `${caseId}-v1`);
  expect(report?.status).toBe('final');
  expect(delivery.remoteIds).toEqual({ DiagnosticReport: report?.id, DocumentReference: note?.id });
  expect(await byIdentifier('Communication', REPORT_COMMUNICATION_SYSTEM, `${caseId}-v1`)).toHaveLength(0);
  const view = await caseView(caseId);
  expect(view.status).toBe('delivered');
  expect(view.timeline.find((e) => e.type === 'report_delivered')?.data).toMatchObject({
    transaction: { state: 'refused', reason: expect.stringMatching(/answered 403/) as unknown },
    communication: { state: 'refused', reason: expect.stringMatching(/^the recipient refused it: FHIR server answered 403/) as unknown },
  });
  expect(view.timeline.find((e) => e.type === 'physician_not_told')?.data).toMatchObject({ deliveryId: delivery.id, version: 1 });
  const notes = await notifications(caseId, 'delivery.physician_not_told');
  expect(notes.find((n) => n.type === 'delivery.physician_not_told')?.message).toMatch(/version 1\) is in the referring physician's EHR.*phone the referring physician/);
}, 90_000);

it('writing one by one, delivers the report and its note where the EHR refuses the Communication (4xx), and tells the case managers', async () => {
  const endpointId = await registerEhr('Referring EHR (one by one, Communications not granted)', NO_COMMUNICATION, true);
  const { caseId, delivery } = await deliveredCase(endpointId);
  // Delivered at once: not failed, not retried.
  expect(delivery).toMatchObject({ state: 'delivered', mode: 'sequential', attempts: 1, lastError: null });
  const [report] = await byIdentifier<DiagnosticReport>('DiagnosticReport', REPORT_IDENTIFIER_SYSTEM, `${caseId}-v1`);
  const [note] = await byIdentifier<DocumentReference>('DocumentReference', REPORT_IDENTIFIER_SYSTEM, `${caseId}-v1`);
  expect(delivery.remoteIds).toEqual({ DiagnosticReport: report?.id, DocumentReference: note?.id });
  expect(await byIdentifier('Communication', REPORT_COMMUNICATION_SYSTEM, `${caseId}-v1`)).toHaveLength(0);
  // No transaction was sent to this registration: the refusal is the Communication's own.
  const view = await caseView(caseId);
  expect(view.status).toBe('delivered');
  const delivered = view.timeline.find((e) => e.type === 'report_delivered')?.data;
  expect(delivered).toMatchObject({ communication: { state: 'refused', reason: expect.stringMatching(/^the recipient refused it: FHIR server answered 403/) as unknown } });
  expect(delivered?.transaction).toBeUndefined();
  expect(view.timeline.find((e) => e.type === 'physician_not_told')?.data).toMatchObject({ deliveryId: delivery.id, version: 1 });
  await notifications(caseId, 'delivery.physician_not_told');
}, 90_000);
