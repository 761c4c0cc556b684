import type { Communication, DiagnosticReport, DocumentReference } from 'fhir/r4';
import { PDFDocument } from 'pdf-lib';
import { DIAGNOSTIC_REPORT_REPLACES, REPORT_COMMUNICATION_SYSTEM, REPORT_IDENTIFIER_SYSTEM } from '../../src/delivery/report-resources';
import type { SandboxServer } from '../../src/sandbox';
import { validationIssues } from '../support/fhir-validation';
import { fixtureBundle, fixturePatientId } from '../support/fixture-child';
import { startForFile } from '../support/for-file';
import { openCaseIn, opinionFor, referredIntake, searchSandbox } from '../support/opinion-case';
import { pdfText } from '../support/pdf-text';
import { deliveryOnceIn, FAST_DELIVERY_ENV, listDeliveries, startServiceAndReferringEhr, type DeliveryView } from '../support/referring-ehr-world';
import { eventually, type TestService } from '../support/service';
import { makeSmartClient } from '../support/smart-client';

/**
 * The done-line of issue 7, against a sandbox referring EHR with SMART auth: a signed opinion for
 * the fixture child lands there as exactly one DiagnosticReport (and Communication), found by
 * identifier, valid R4, whose PDF holds every answered question; 500s on the write still end with
 * exactly one; an amendment after delivery produces the amended version.
 */
let svc: TestService;
let ehr: SandboxServer;
let cm: string;
let specialist: string;
let endpointId: string;
const CLIENT = 'sob-delivery-e2e';
/** What a recipient registration asks for: read to find the patient, write for the three resources. */
const RECIPIENT_SCOPE = 'system/*.read system/DiagnosticReport.write system/DocumentReference.write system/Communication.write';

startForFile(() => startServiceAndReferringEhr({ env: FAST_DELIVERY_ENV, ehr: { auth: 'smart' } }), (started) => ({ svc, ehr } = started));

beforeAll(async () => {
  const smart = await makeSmartClient(CLIENT, 'ES384');
  ehr.registerClient({ clientId: smart.clientId, jwks: smart.publicJwks });
  const admin = await svc.token('admin');
  cm = await svc.token('case_manager', 'cm-1');
  specialist = await svc.token('specialist', 'spec-1');
  const res = await svc.request('POST', '/api/endpoints', {
    token: admin,
    body: { name: 'Referring EHR', baseUrl: ehr.baseUrl, auth: { type: 'smart-backend', clientId: smart.clientId, privateKeyJwk: smart.privateKeyJwk, scope: RECIPIENT_SCOPE }, allowInsecureHttp: true },
  });
  expect(res.status).toBe(201);
  endpointId = ((await res.json()) as { id: string }).id;
}, 60_000);

const deliveries = (caseId: string): Promise<DeliveryView[]> => listDeliveries(svc, cm, caseId);
const until = (caseId: string, version: number, states: string[]): Promise<DeliveryView> => deliveryOnceIn(svc, cm, caseId, version, states);

/** The referring EHR registered again as another endpoint (its own SMART client), to change its capabilities. */
async function registerEhrAgain(suffix: string, name: string): Promise<string> {
  const smart = await makeSmartClient(`${CLIENT}-${suffix}`, 'ES384');
  ehr.registerClient({ clientId: smart.clientId, jwks: smart.publicJwks });
  const res = await svc.request('POST', '/api/endpoints', {
    token: await svc.token('admin'),
    body: { name, baseUrl: ehr.baseUrl, auth: { type: 'smart-backend', clientId: smart.clientId, privateKeyJwk: smart.privateKeyJwk, scope: RECIPIENT_SCOPE }, allowInsecureHttp: true },
  });
  return ((await res.json()) as { id: string }).id;
}

async function signedCase(intake = referredIntake()): Promise<string> {
  const caseId = await openCaseIn(svc, cm, 'assigned', intake);
  expect((await svc.request('POST', `/api/cases/${caseId}/recipients`, { token: cm, body: { endpointId } })).status).toBe(201);
  const put = await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: { ...opinionFor(intake), specialist: { name: 'Dr. Zoë Ångström', npi: '1234567893' } } });
  expect(put.status).toBe(200);
  const sign = await svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token: specialist });
  expect(sign.status).toBe(201);
  return caseId;
}

const byIdentifier = <T extends DiagnosticReport | Communication | DocumentReference>(type: string, system: string, value: string) =>
  searchSandbox<T>(ehr, CLIENT, type, { identifier: `${system}|${value}` });

it('lands a signed opinion in the referring EHR as exactly one valid DiagnosticReport and Communication', async () => {
  const intake = referredIntake();
  const caseId = await openCaseIn(svc, cm, 'assigned', intake);
  expect((await svc.request('POST', `/api/cases/${caseId}/recipients`, { token: cm, body: { endpointId } })).status).toBe(201);

  // Every question must be answered: 400 names the missing one.
  const partial = opinionFor(intake);
  const missing = await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: { ...partial, answers: partial.answers.slice(0, 1) } });
  expect(missing.status).toBe(400);
  expect(await missing.text()).toContain(intake.questions[1]);

  const put = await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: { ...partial, specialist: { name: 'Dr. Zoë Ångström', npi: '1234567893' } } });
  expect(put.status).toBe(200);
  const detail = (await (await svc.request('GET', `/api/cases/${caseId}`, { token: cm })).json()) as { status: string };
  expect(detail.status).toBe('in_review');
  // Only the author signs.
  expect((await svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token: await svc.token('specialist', 'someone-else') })).status).toBe(403);
  const sign = await svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token: specialist });
  expect(sign.status).toBe(201);
  expect(await sign.json()).toMatchObject({ current: { version: 1, status: 'final' } });

  const delivery = await until(caseId, 1, ['delivered', 'failed', 'needs_review']);
  expect(delivery).toMatchObject({ state: 'delivered', lastError: null });
  expect(delivery.remoteIds.DiagnosticReport).toBeTruthy();
  expect(delivery.remoteIds.Communication).toBeTruthy();
  expect(delivery.remoteIds.DocumentReference).toBeTruthy();
  expect(delivery).toMatchObject({ mode: 'transaction' });

  const reports = await byIdentifier<DiagnosticReport>('DiagnosticReport', REPORT_IDENTIFIER_SYSTEM, `${caseId}-v1`);
  expect(reports).toHaveLength(1);
  const report = reports[0] as DiagnosticReport;
  expect(report.id).toBe(delivery.remoteIds.DiagnosticReport);
  expect(report.status).toBe('final');
  expect(report.subject?.reference).toBe(`Patient/${fixturePatientId('referring-ehr')}`);
  expect(validationIssues(report).filter((i) => i.severity === 'error' || i.severity === 'fatal')).toEqual([]);
  const form = report.presentedForm?.[0];
  const pdf = Buffer.from(form?.data ?? '', 'base64');
  expect(form?.size).toBe(pdf.length);
  expect((await PDFDocument.load(pdf)).getPageCount()).toBeGreaterThanOrEqual(1);
  const text = (await pdfText(pdf)).replace(/\s+/g, ' ');
  for (const qa of opinionFor(intake).answers) {
    expect(text).toContain(qa.question);
    expect(text).toContain(qa.answer);
  }
  // The same PDF is served by the API.
  const served = await svc.request('GET', `/api/cases/${caseId}/report.pdf`, { token: cm });
  expect(served.headers.get('content-type')).toBe('application/pdf');
  expect(Buffer.from(await served.arrayBuffer()).equals(pdf)).toBe(true);

  const comms = await byIdentifier<Communication>('Communication', REPORT_COMMUNICATION_SYSTEM, `${caseId}-v1`);
  expect(comms).toHaveLength(1);
  expect(comms[0]?.recipient?.[0]?.reference).toBe(`Practitioner/${fixtureBundle('referring-ehr').entry?.find((e) => e.resource?.resourceType === 'Practitioner')?.resource?.id}`);
  expect(comms[0]?.payload?.[1]?.contentReference?.reference).toBe(`DiagnosticReport/${report.id}`);
  expect(validationIssues(comms[0]).filter((i) => i.severity === 'error' || i.severity === 'fatal')).toEqual([]);

  const after = (await (await svc.request('GET', `/api/cases/${caseId}`, { token: cm })).json()) as { status: string; timeline: { type: string }[] };
  expect(after.status).toBe('delivered');
  expect(after.timeline.map((e) => e.type)).toContain('report_delivered');
  const notes = await eventually(
    async () => ((await (await svc.request('GET', `/api/notifications?caseId=${caseId}`, { token: cm })).json()) as { items: { type: string }[] }).items,
    (items) => items.some((n) => n.type === 'report.delivered'),
    30_000,
  );
  expect(notes.map((n) => n.type)).toEqual(expect.arrayContaining(['opinion.signed', 'report.delivered']));

  // An amendment after delivery: version 2, FHIR status amended, its own report beside the first.
  const amend = await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: { ...opinionFor(intake, { followUp: 'Endocrinology review in 6 weeks (amended).' }) } });
  expect(amend.status).toBe(200);
  expect((await svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token: specialist })).status).toBe(201);
  const second = await until(caseId, 2, ['delivered', 'failed', 'needs_review']);
  expect(second.state).toBe('delivered');
  const amended = await byIdentifier<DiagnosticReport>('DiagnosticReport', REPORT_IDENTIFIER_SYSTEM, `${caseId}-v2`);
  expect(amended).toHaveLength(1);
  expect(amended[0]?.status).toBe('amended');
  // It names the report it replaces there (R4 has no status for a replaced DiagnosticReport).
  expect(amended[0]?.extension).toEqual([{ url: DIAGNOSTIC_REPORT_REPLACES, valueReference: { reference: `DiagnosticReport/${delivery.remoteIds.DiagnosticReport}` } }]);
  expect(await pdfText(Buffer.from(amended[0]?.presentedForm?.[0]?.data ?? '', 'base64'))).toContain('(amended)');
  const docs = await byIdentifier<DocumentReference>('DocumentReference', REPORT_IDENTIFIER_SYSTEM, `${caseId}-v2`);
  expect(docs).toHaveLength(1);
  expect(docs[0]?.docStatus).toBe('amended');
  expect(docs[0]?.relatesTo?.[0]).toEqual({ code: 'replaces', target: { reference: `DocumentReference/${delivery.remoteIds.DocumentReference}` } });
  expect(await byIdentifier<DiagnosticReport>('DiagnosticReport', REPORT_IDENTIFIER_SYSTEM, `${caseId}-v1`)).toHaveLength(1);
  // The replaced note is marked superseded at the EHR, so its document list shows the amendment as current.
  expect(docs[0]?.status).toBe('current');
  const replaced = await byIdentifier<DocumentReference>('DocumentReference', REPORT_IDENTIFIER_SYSTEM, `${caseId}-v1`);
  expect(replaced.map((d) => [d.id, d.status])).toEqual([[delivery.remoteIds.DocumentReference, 'superseded']]);
  const timeline = ((await (await svc.request('GET', `/api/cases/${caseId}`, { token: cm })).json()) as { timeline: { type: string; data: { version?: number } }[] }).timeline;
  expect(timeline.find((e) => e.type === 'report_delivered' && e.data.version === 2)?.data).toMatchObject({
    previousDocument: { id: delivery.remoteIds.DocumentReference, state: 'superseded' },
  });
  const versions = ((await (await svc.request('GET', `/api/cases/${caseId}/opinion`, { token: cm })).json()) as { versions: { version: number; status: string }[] }).versions;
  expect(versions.map((v) => [v.version, v.status])).toEqual([[1, 'final'], [2, 'amended']]);
  const v1 = await svc.request('GET', `/api/cases/${caseId}/report.pdf?version=1`, { token: cm });
  expect(v1.headers.get('x-report-version')).toBe('1');
}, 120_000);

it('writes the report where the recipient ignores the identifier search and answers with every report', async () => {
  // Another case's report is at the recipient already: a lenient search answers with it.
  const other = await signedCase();
  expect((await until(other, 1, ['delivered', 'failed', 'needs_review'])).state).toBe('delivered');
  const rules = ['DiagnosticReport', 'DocumentReference', 'Communication'].map((type) =>
    ehr.faults.add({ match: `GET /${type}`, action: { kind: 'ignore-parameter', name: 'identifier' } }),
  );
  let caseId: string;
  try {
    caseId = await signedCase();
    expect((await until(caseId, 1, ['delivered', 'failed', 'needs_review'])).state).toBe('delivered');
    expect(rules.some((r) => (ehr.faults.rule(r)?.fired ?? 0) > 0)).toBe(true);
  } finally {
    for (const r of rules) ehr.faults.remove(r);
  }
  // Its own report is there (the other case's was not taken for it), once.
  expect(await byIdentifier('DiagnosticReport', REPORT_IDENTIFIER_SYSTEM, `${caseId}-v1`)).toHaveLength(1);
  expect(await byIdentifier('Communication', REPORT_COMMUNICATION_SYSTEM, `${caseId}-v1`)).toHaveLength(1);
  const [delivery] = await deliveries(caseId);
  const [otherDelivery] = await deliveries(other);
  expect(delivery?.remoteIds.DiagnosticReport).toBeDefined();
  expect(delivery?.remoteIds.DiagnosticReport).not.toBe(otherDelivery?.remoteIds.DiagnosticReport);
}, 120_000);

it('ends with exactly one report when the recipient fails the write with 500 three times', async () => {
  const rule = ehr.faults.add({ match: 'POST *', action: { kind: 'server-error' }, from: 1, to: 3 });
  try {
    const caseId = await signedCase();
    const delivery = await until(caseId, 1, ['delivered', 'failed', 'needs_review']);
    expect(delivery.state).toBe('delivered');
    expect(ehr.faults.rule(rule)?.fired).toBe(3);
    expect(await byIdentifier('DiagnosticReport', REPORT_IDENTIFIER_SYSTEM, `${caseId}-v1`)).toHaveLength(1);
    expect(await byIdentifier('Communication', REPORT_COMMUNICATION_SYSTEM, `${caseId}-v1`)).toHaveLength(1);
  } finally {
    ehr.faults.remove(rule);
  }
}, 90_000);

it('alerts the case manager when a delivery keeps failing, and retries it on request', async () => {
  const rule = ehr.faults.add({ match: 'POST *', action: { kind: 'server-error' } });
  let caseId: string;
  try {
    caseId = await signedCase();
    const failed = await until(caseId, 1, ['failed', 'delivered']);
    expect(failed.state).toBe('failed');
    expect(failed.attempts).toBeGreaterThanOrEqual(3);
    expect(failed.lastError).toMatch(/500|server/i);
    const detail = (await (await svc.request('GET', `/api/cases/${caseId}`, { token: cm })).json()) as { status: string; timeline: { type: string }[] };
    expect(detail.status).toBe('report_signed');
    expect(detail.timeline.map((e) => e.type)).toContain('delivery_failed');
    await eventually(
      async () => ((await (await svc.request('GET', `/api/notifications?caseId=${caseId}`, { token: cm })).json()) as { items: { type: string }[] }).items,
      (items) => items.some((n) => n.type === 'delivery.failed'),
      30_000,
    );
  } finally {
    ehr.faults.remove(rule);
  }
  const retry = await svc.request('POST', `/api/cases/${caseId}/deliveries/${(await deliveries(caseId))[0]?.id}/retry`, { token: cm });
  expect(retry.status).toBe(202);
  expect((await until(caseId, 1, ['delivered'])).state).toBe('delivered');
  expect(await byIdentifier('DiagnosticReport', REPORT_IDENTIFIER_SYSTEM, `${caseId}-v1`)).toHaveLength(1);
}, 120_000);

it('never files the report under a new patient: no match → needs_review until the case manager chooses', async () => {
  const intake = referredIntake({ patient: { ...referredIntake().patient, name: { given: ['Nobody'], family: 'Unmatched' } } });
  const caseId = await signedCase(intake);
  const review = await until(caseId, 1, ['needs_review', 'delivered', 'failed']);
  expect(review.state).toBe('needs_review');
  expect(review.reviewReason).toMatch(/No patient/);
  expect(ehr.writtenResources('Patient')).toHaveLength(0);
  const [recipient] = ((await (await svc.request('GET', `/api/cases/${caseId}/recipients`, { token: cm })).json()) as { items: { id: string }[] }).items;
  const chosen = await svc.request('POST', `/api/cases/${caseId}/recipients/${recipient?.id}/patient`, { token: cm, body: { patientId: fixturePatientId('referring-ehr') } });
  expect(chosen.status).toBe(200);
  expect((await until(caseId, 1, ['delivered'])).state).toBe('delivered');
}, 90_000);

it('writes nothing into the chart once the case is cancelled, even when the patient is chosen afterwards', async () => {
  const intake = referredIntake({ patient: { ...referredIntake().patient, name: { given: ['Withdrawn'], family: 'Unmatched' } } });
  const caseId = await signedCase(intake);
  expect((await until(caseId, 1, ['needs_review', 'delivered', 'failed'])).state).toBe('needs_review');
  const cancel = await svc.request('POST', `/api/cases/${caseId}/transitions`, { token: cm, body: { to: 'cancelled', reason: 'The family withdrew consent.' } });
  expect(cancel.status).toBe(200);
  const [stopped] = await deliveries(caseId);
  expect(stopped?.state).toBe('cancelled');
  // The case manager chooses the patient anyway, then asks for a retry: nothing is sent.
  const [recipient] = ((await (await svc.request('GET', `/api/cases/${caseId}/recipients`, { token: cm })).json()) as { items: { id: string }[] }).items;
  expect((await svc.request('POST', `/api/cases/${caseId}/recipients/${recipient?.id}/patient`, { token: cm, body: { patientId: fixturePatientId('referring-ehr') } })).status).toBe(200);
  expect((await svc.request('POST', `/api/cases/${caseId}/deliveries/${stopped?.id}/retry`, { token: cm })).status).toBe(409);
  expect((await deliveries(caseId))[0]?.state).toBe('cancelled');
  expect(await byIdentifier('DiagnosticReport', REPORT_IDENTIFIER_SYSTEM, `${caseId}-v1`)).toHaveLength(0);
}, 90_000);

it('stops a signed report reopened for correction before it reached the chart: nothing of version 1 is written, even when the patient is chosen afterwards', async () => {
  const intake = referredIntake({ patient: { ...referredIntake().patient, name: { given: ['Corrected'], family: 'Unmatched' } } });
  const caseId = await signedCase(intake);
  expect((await until(caseId, 1, ['needs_review', 'delivered', 'failed'])).state).toBe('needs_review');
  // The specialist reopens the report to correct it (report_signed → in_review).
  expect((await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: opinionFor(intake, { followUp: 'Corrected: review in 4 weeks.' }) })).status).toBe(200);
  const [stopped] = await deliveries(caseId);
  expect(stopped?.state).toBe('superseded');
  // The case manager chooses the patient meanwhile: version 1 is not sent, and cannot be retried.
  const [recipient] = ((await (await svc.request('GET', `/api/cases/${caseId}/recipients`, { token: cm })).json()) as { items: { id: string }[] }).items;
  expect((await svc.request('POST', `/api/cases/${caseId}/recipients/${recipient?.id}/patient`, { token: cm, body: { patientId: fixturePatientId('referring-ehr') } })).status).toBe(200);
  expect((await svc.request('POST', `/api/cases/${caseId}/deliveries/${stopped?.id}/retry`, { token: cm })).status).toBe(409);
  expect(await byIdentifier('DiagnosticReport', REPORT_IDENTIFIER_SYSTEM, `${caseId}-v1`)).toHaveLength(0);
  // Signed again: the corrected version goes out.
  expect((await svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token: specialist })).status).toBe(201);
  expect((await until(caseId, 2, ['delivered', 'failed', 'needs_review'])).state).toBe('delivered');
  expect(await byIdentifier('DiagnosticReport', REPORT_IDENTIFIER_SYSTEM, `${caseId}-v1`)).toHaveLength(0);
}, 90_000);

it('never delivers a version after a newer one: signing version 2 supersedes version 1 not sent yet', async () => {
  const intake = referredIntake();
  const rule = ehr.faults.add({ match: 'POST *', action: { kind: 'server-error' } });
  let caseId: string;
  try {
    caseId = await signedCase(intake);
    expect((await until(caseId, 1, ['failed', 'delivered'])).state).toBe('failed');
    // The specialist corrects the opinion while version 1 has not reached the recipient.
    expect((await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: opinionFor(intake, { followUp: 'Corrected: review in 4 weeks.' }) })).status).toBe(200);
    expect((await svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token: specialist })).status).toBe(201);
    const first = (await deliveries(caseId)).find((d) => d.version === 1);
    expect(first?.state).toBe('superseded');
    // Retrying version 1 is refused: it would land after version 2 as the current report.
    expect((await svc.request('POST', `/api/cases/${caseId}/deliveries/${first?.id}/retry`, { token: cm })).status).toBe(409);
  } finally {
    ehr.faults.remove(rule);
  }
  const second = await until(caseId, 2, ['delivered', 'failed', 'needs_review']);
  if (second.state !== 'delivered') {
    // Version 2 spent its attempts while the recipient failed every write: retry it now that it answers.
    expect((await svc.request('POST', `/api/cases/${caseId}/deliveries/${second.id}/retry`, { token: cm })).status).toBe(202);
    expect((await until(caseId, 2, ['delivered'])).state).toBe('delivered');
  }
  expect(await byIdentifier('DiagnosticReport', REPORT_IDENTIFIER_SYSTEM, `${caseId}-v2`)).toHaveLength(1);
  expect(await byIdentifier('DiagnosticReport', REPORT_IDENTIFIER_SYSTEM, `${caseId}-v1`)).toHaveLength(0);
  expect((await deliveries(caseId)).find((d) => d.version === 1)?.state).toBe('superseded');
}, 120_000);

it('reads a patient id given for the recipient before filing the report under it', async () => {
  const intake = referredIntake();
  const caseId = await openCaseIn(svc, cm, 'assigned', intake);
  expect((await svc.request('POST', `/api/cases/${caseId}/recipients`, { token: cm, body: { endpointId, patient: { id: 'no-such-patient' } } })).status).toBe(201);
  expect((await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: opinionFor(intake) })).status).toBe(200);
  expect((await svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token: specialist })).status).toBe(201);
  const review = await until(caseId, 1, ['needs_review', 'delivered', 'failed']);
  expect(review).toMatchObject({ state: 'needs_review', reviewReason: 'Patient/no-such-patient does not exist at the recipient.' });
  expect(await byIdentifier('DiagnosticReport', REPORT_IDENTIFIER_SYSTEM, `${caseId}-v1`)).toHaveLength(0);
  // The case manager chooses the right one: delivered under it.
  const [recipient] = ((await (await svc.request('GET', `/api/cases/${caseId}/recipients`, { token: cm })).json()) as { items: { id: string }[] }).items;
  expect((await svc.request('POST', `/api/cases/${caseId}/recipients/${recipient?.id}/patient`, { token: cm, body: { patientId: fixturePatientId('referring-ehr') } })).status).toBe(200);
  expect((await until(caseId, 1, ['delivered'])).state).toBe('delivered');
  const [report] = await byIdentifier<DiagnosticReport>('DiagnosticReport', REPORT_IDENTIFIER_SYSTEM, `${caseId}-v1`);
  expect(report?.subject?.reference).toBe(`Patient/${fixturePatientId('referring-ehr')}`);
}, 90_000);

it('writes one by one with conditional creates where the recipient offers no transaction', async () => {
  // The same EHR registered again, its capabilities without the whole-system transaction.
  const sequential = await registerEhrAgain('seq', 'Referring EHR (no transactions)');
  await svc.service.db.query(`UPDATE endpoints SET capabilities = jsonb_set(capabilities, '{systemInteractions}', '[]') WHERE id = $1`, [sequential]);
  const intake = referredIntake();
  const caseId = await openCaseIn(svc, cm, 'assigned', intake);
  expect((await svc.request('POST', `/api/cases/${caseId}/recipients`, { token: cm, body: { endpointId: sequential } })).status).toBe(201);
  expect((await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: opinionFor(intake) })).status).toBe(200);
  const rule = ehr.faults.add({ match: 'POST /Communication', action: { kind: 'server-error' }, from: 1, to: 3 });
  try {
    expect((await svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token: specialist })).status).toBe(201);
    const delivery = await until(caseId, 1, ['delivered', 'failed', 'needs_review']);
    expect(delivery).toMatchObject({ state: 'delivered', mode: 'sequential' });
  } finally {
    ehr.faults.remove(rule);
  }
  for (const [type, system] of [['DiagnosticReport', REPORT_IDENTIFIER_SYSTEM], ['DocumentReference', REPORT_IDENTIFIER_SYSTEM], ['Communication', REPORT_COMMUNICATION_SYSTEM]] as const) {
    expect({ type, n: (await byIdentifier(type, system, `${caseId}-v1`)).length }).toEqual({ type, n: 1 });
  }
}, 90_000);

it('writing one by one, delivers the report and its Communication where the recipient refuses the note (4xx), and says so', async () => {
  const sequential = await registerEhrAgain('seq-note-refused', 'Referring EHR (no transactions, notes refused)');
  await svc.service.db.query(`UPDATE endpoints SET capabilities = jsonb_set(capabilities, '{systemInteractions}', '[]') WHERE id = $1`, [sequential]);
  const intake = referredIntake();
  const caseId = await openCaseIn(svc, cm, 'assigned', intake);
  expect((await svc.request('POST', `/api/cases/${caseId}/recipients`, { token: cm, body: { endpointId: sequential } })).status).toBe(201);
  const signVersion = async (version: number, followUp: string): Promise<DeliveryView> => {
    expect((await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: opinionFor(intake, { followUp }) })).status).toBe(200);
    expect((await svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token: specialist })).status).toBe(201);
    return until(caseId, version, ['delivered', 'failed', 'needs_review']);
  };
  const first = await signVersion(1, 'Endocrinology review in 3 months.');
  expect(first).toMatchObject({ state: 'delivered', mode: 'sequential' });

  // The EHR now refuses every note (401 after a fresh token too: a 4xx no retry changes, as 403 or 422).
  const refusing = ehr.faults.add({ match: 'POST /DocumentReference', action: { kind: 'expired-token' } });
  let second: DeliveryView;
  try {
    second = await signVersion(2, 'Amended: endocrinology review in 6 weeks.');
  } finally {
    ehr.faults.remove(refusing);
  }
  // Delivered at once: the amendment and the message are in the chart, the note is not.
  expect(second).toMatchObject({ state: 'delivered', attempts: 1, lastError: null });
  const [report] = await byIdentifier<DiagnosticReport>('DiagnosticReport', REPORT_IDENTIFIER_SYSTEM, `${caseId}-v2`);
  const [message] = await byIdentifier<Communication>('Communication', REPORT_COMMUNICATION_SYSTEM, `${caseId}-v2`);
  expect(report?.status).toBe('amended');
  expect(message?.payload?.some((p) => p.contentReference?.reference === `DiagnosticReport/${report?.id}`)).toBe(true);
  expect(await byIdentifier('DocumentReference', REPORT_IDENTIFIER_SYSTEM, `${caseId}-v2`)).toHaveLength(0);
  expect(second.remoteIds).toEqual({ DiagnosticReport: report?.id, Communication: message?.id });
  // Recorded with why; version 1's note stays the current one there, and says why.
  const timeline = ((await (await svc.request('GET', `/api/cases/${caseId}`, { token: cm })).json()) as { timeline: { type: string; data: Record<string, unknown> }[] }).timeline;
  expect(timeline.find((e) => e.type === 'report_delivered' && e.data.version === 2)?.data).toMatchObject({
    document: { state: 'refused', reason: expect.stringMatching(/^the recipient refused it: FHIR server answered 401/) as unknown },
    previousDocument: { id: first.remoteIds.DocumentReference, state: 'left-current', reason: expect.stringMatching(/^the amendment's own DocumentReference was refused/) as unknown },
  });
  const [note1] = await byIdentifier<DocumentReference>('DocumentReference', REPORT_IDENTIFIER_SYSTEM, `${caseId}-v1`);
  expect(note1?.status).toBe('current');
}, 90_000);

it('does not resend a write whose answer was lost where the recipient does not declare conditional create', async () => {
  // The same EHR registered again, its CapabilityStatement without conditionalCreate for DiagnosticReport.
  const endpointId = await registerEhrAgain('nocc', 'Referring EHR (If-None-Exist not declared)');
  const { rows } = await svc.service.db.query<{ cc: boolean | null }>(`SELECT (capabilities->'resources'->'DiagnosticReport'->>'conditionalCreate')::boolean AS cc FROM endpoints WHERE id = $1`, [endpointId]);
  expect(rows[0]?.cc).toBe(true);
  await svc.service.db.query(`UPDATE endpoints SET capabilities = capabilities #- '{resources,DiagnosticReport,conditionalCreate}' WHERE id = $1`, [endpointId]);
  const intake = referredIntake();
  const caseId = await openCaseIn(svc, cm, 'assigned', intake);
  expect((await svc.request('POST', `/api/cases/${caseId}/recipients`, { token: cm, body: { endpointId } })).status).toBe(201);
  expect((await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: opinionFor(intake) })).status).toBe(200);
  // The write is processed, its answer cut off.
  const cut = ehr.faults.add({ match: 'POST *', action: { kind: 'truncated', fraction: 0 }, nth: 1 });
  const since = Date.now();
  try {
    expect((await svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token: specialist })).status).toBe(201);
    expect((await until(caseId, 1, ['delivered', 'failed', 'needs_review'])).state).toBe('delivered');
    expect(ehr.faults.rule(cut)?.fired).toBe(1);
  } finally {
    ehr.faults.remove(cut);
  }
  // Sent once: the job's next attempt found the report by its identifier instead of sending it again.
  expect(ehr.requests().filter((r) => r.method === 'POST' && r.at >= since)).toHaveLength(1);
  expect(await byIdentifier('DiagnosticReport', REPORT_IDENTIFIER_SYSTEM, `${caseId}-v1`)).toHaveLength(1);
}, 90_000);

it('delivers an amendment even where the recipient may not update the note it replaces, and says it stayed current', async () => {
  // The same EHR registered again with SMART v2 scopes that allow creating the three resources but not updating them.
  const smart = await makeSmartClient(`${CLIENT}-create-only`, 'ES384');
  ehr.registerClient({ clientId: smart.clientId, jwks: smart.publicJwks });
  const scope = 'system/*.rs system/DiagnosticReport.c system/DocumentReference.c system/Communication.c';
  const res = await svc.request('POST', '/api/endpoints', {
    token: await svc.token('admin'),
    body: { name: 'Referring EHR (create only)', baseUrl: ehr.baseUrl, auth: { type: 'smart-backend', clientId: smart.clientId, privateKeyJwk: smart.privateKeyJwk, scope }, allowInsecureHttp: true },
  });
  expect(res.status).toBe(201);
  const createOnly = ((await res.json()) as { id: string }).id;
  const intake = referredIntake();
  const caseId = await openCaseIn(svc, cm, 'assigned', intake);
  expect((await svc.request('POST', `/api/cases/${caseId}/recipients`, { token: cm, body: { endpointId: createOnly } })).status).toBe(201);
  expect((await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: opinionFor(intake) })).status).toBe(200);
  expect((await svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token: specialist })).status).toBe(201);
  const first = await until(caseId, 1, ['delivered', 'failed', 'needs_review']);
  expect(first.state).toBe('delivered');
  const amendedAt = Date.now();
  expect((await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: opinionFor(intake, { followUp: 'Amended follow-up.' }) })).status).toBe(200);
  expect((await svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token: specialist })).status).toBe(201);
  const second = await until(caseId, 2, ['delivered', 'failed', 'needs_review']);
  expect(second).toMatchObject({ state: 'delivered', lastError: null });
  expect((await byIdentifier<DocumentReference>('DocumentReference', REPORT_IDENTIFIER_SYSTEM, `${caseId}-v1`))[0]?.status).toBe('current');
  const timeline = ((await (await svc.request('GET', `/api/cases/${caseId}`, { token: cm })).json()) as { timeline: { type: string; data: { version?: number } }[] }).timeline;
  // The scope granted has no update on DocumentReference: the update is not even asked for (it
  // would be refused, 403), and the reason says the scope was not granted.
  expect(timeline.find((e) => e.type === 'report_delivered' && e.data.version === 2)?.data).toMatchObject({
    previousDocument: { id: first.remoteIds.DocumentReference, state: 'left-current', reason: expect.stringContaining(`did not grant this client update on DocumentReference (granted SMART scope "${scope}"`) as unknown },
  });
  expect(ehr.requests().filter((r) => r.at >= amendedAt && r.method === 'PUT' && r.target.startsWith('/DocumentReference/'))).toEqual([]);
}, 90_000);
