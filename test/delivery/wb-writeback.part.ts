import { Queue } from 'bullmq';
import type { Communication, DiagnosticReport, DocumentReference } from 'fhir/r4';
import { deliveryJobId } from '../../queues/deliver-report';
import { QUEUES } from '../../queues/names';
import { NPI_SYSTEM } from '../../src/cases/fhir-codes';
import { REPORT_COMMUNICATION_SYSTEM, REPORT_IDENTIFIER_SYSTEM } from '../../src/delivery/report-resources';
import { bullConnectionOptions } from '../../src/redis';
import type { SandboxServer } from '../../src/sandbox';
import { openCaseIn, opinionFor, referredIntake, searchSandbox } from '../support/opinion-case';
import { FAST_DELIVERY_ENV, listDeliveries, startReferringEhr, type DeliveryView } from '../support/referring-ehr-world';
import { eventually, FAST_CLIENT, jobState, startTestService, type TestService } from '../support/service';
import { makeSmartClient } from '../support/smart-client';

/**
 * Write-back edge cases against a real sandbox referring EHR: what happens to a delivery while its
 * worker is between recording the attempt and writing into the chart.
 */
let svc: TestService;
let ehr: SandboxServer;
/** The same kind of referring EHR behind SMART Backend Services: the scope granted decides what may be written. */
let smartEhr: SandboxServer;
let queue: Queue;
let cm: string;
let specialist: string;
let endpointId: string;

beforeAll(async () => {
  [svc, ehr, smartEhr] = await Promise.all([
    startTestService(FAST_DELIVERY_ENV, FAST_CLIENT),
    startReferringEhr(),
    startReferringEhr({ name: 'referring-ehr-smart', auth: 'smart' }),
  ]);
  queue = new Queue(QUEUES.deliverReport, { connection: bullConnectionOptions(svc.config.redisUrl), prefix: svc.config.queuePrefix });
  cm = await svc.token('case_manager', 'cm-wb');
  specialist = await svc.token('specialist', 'spec-wb');
  const res = await svc.request('POST', '/api/endpoints', {
    token: await svc.token('admin'),
    body: { name: 'Referring EHR', baseUrl: ehr.baseUrl, auth: { type: 'none' }, allowInsecureHttp: true },
  });
  expect(res.status).toBe(201);
  endpointId = ((await res.json()) as { id: string }).id;
}, 60_000);

afterAll(async () => {
  await queue.close();
  await Promise.all([svc.stop(), ehr.stop(), smartEhr.stop()]);
});

const deliveries = (caseId: string): Promise<DeliveryView[]> => listDeliveries(svc, cm, caseId);

const reportsOf = (caseId: string, version: number) =>
  searchSandbox<DiagnosticReport>(ehr, 'none', 'DiagnosticReport', { identifier: `${REPORT_IDENTIFIER_SYSTEM}|${caseId}-v${version}` });

/** A case with the referring EHR as recipient and a draft ready to sign. */
async function caseReadyToSign(): Promise<{ caseId: string; intake: ReturnType<typeof referredIntake> }> {
  const intake = referredIntake();
  const caseId = await openCaseIn(svc, cm, 'assigned', intake);
  expect((await svc.request('POST', `/api/cases/${caseId}/recipients`, { token: cm, body: { endpointId } })).status).toBe(201);
  expect((await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: opinionFor(intake) })).status).toBe(200);
  return { caseId, intake };
}

/**
 * Signs, and holds the delivery's identifier search at the EHR (the last look-up before the write)
 * while `meanwhile` runs; then waits for the delivery job to end.
 */
async function signAndActWhileLookingUp(caseId: string, meanwhile: () => Promise<void>): Promise<void> {
  const held = ehr.faults.add({ match: 'GET /DiagnosticReport*', action: { kind: 'latency', ms: 1_500 } });
  try {
    const before = ehr.requestCount('GET /DiagnosticReport*');
    expect((await svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token: specialist })).status).toBe(201);
    await eventually(async () => ehr.requestCount('GET /DiagnosticReport*'), (n) => n > before, 20_000);
    await meanwhile();
    const [delivery] = await deliveries(caseId);
    await jobState(queue, deliveryJobId(delivery?.id ?? '', 0), 'completed');
  } finally {
    ehr.faults.remove(held);
  }
}

it('writes nothing into the chart when the case is cancelled while its delivery looks the report up at the EHR', async () => {
  const { caseId } = await caseReadyToSign();
  await signAndActWhileLookingUp(caseId, async () => {
    const cancel = await svc.request('POST', `/api/cases/${caseId}/transitions`, { token: cm, body: { to: 'cancelled', reason: 'The family withdrew consent.' } });
    expect(cancel.status).toBe(200);
  });
  expect(await reportsOf(caseId, 1)).toHaveLength(0);
  expect((await deliveries(caseId)).map((d) => d.state)).toEqual(['cancelled']);
}, 60_000);

it('writes nothing of a signed report reopened for correction while its delivery looks the report up at the EHR', async () => {
  const { caseId, intake } = await caseReadyToSign();
  await signAndActWhileLookingUp(caseId, async () => {
    const reopen = await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: opinionFor(intake, { followUp: 'Corrected: review in 4 weeks.' }) });
    expect(reopen.status).toBe(200);
  });
  expect(await reportsOf(caseId, 1)).toHaveLength(0);
  expect((await deliveries(caseId)).map((d) => d.state)).toEqual(['superseded']);
}, 60_000);

it('delivers the report and its Communication where the scope granted allows writing those but not DocumentReferences', async () => {
  // A common registration: the EHR lets this client file reports and messages, not documents. Its
  // CapabilityStatement (server-wide) still lists DocumentReference create.
  const smart = await makeSmartClient('sob-wb-no-docref', 'ES384');
  smartEhr.registerClient({ clientId: smart.clientId, jwks: smart.publicJwks, scopes: 'system/*.read system/DiagnosticReport.write system/Communication.write' });
  const res = await svc.request('POST', '/api/endpoints', {
    token: await svc.token('admin'),
    body: {
      name: 'Referring EHR (no DocumentReference write)',
      baseUrl: smartEhr.baseUrl,
      auth: { type: 'smart-backend', clientId: smart.clientId, privateKeyJwk: smart.privateKeyJwk, scope: 'system/*.read system/DiagnosticReport.write system/Communication.write' },
      allowInsecureHttp: true,
    },
  });
  expect(res.status).toBe(201);
  const smartEndpoint = ((await res.json()) as { id: string }).id;
  const intake = referredIntake();
  const caseId = await openCaseIn(svc, cm, 'assigned', intake);
  expect((await svc.request('POST', `/api/cases/${caseId}/recipients`, { token: cm, body: { endpointId: smartEndpoint } })).status).toBe(201);
  expect((await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: opinionFor(intake) })).status).toBe(200);
  expect((await svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token: specialist })).status).toBe(201);
  const [delivery] = await eventually(() => deliveries(caseId), (d) => ['delivered', 'failed', 'needs_review'].includes(d[0]?.state ?? ''), 30_000);
  expect(delivery).toMatchObject({ state: 'delivered', lastError: null });
  expect(delivery?.remoteIds.DocumentReference).toBeUndefined();
  const clientSearch = <T extends DiagnosticReport | Communication | DocumentReference>(type: string, system: string) =>
    searchSandbox<T>(smartEhr, smart.clientId, type, { identifier: `${system}|${caseId}-v1` });
  expect(await clientSearch('DiagnosticReport', REPORT_IDENTIFIER_SYSTEM)).toHaveLength(1);
  expect(await clientSearch('Communication', REPORT_COMMUNICATION_SYSTEM)).toHaveLength(1);
  expect(await clientSearch('DocumentReference', REPORT_IDENTIFIER_SYSTEM)).toHaveLength(0);
}, 60_000);

/** Registers `smartEhr` as an endpoint whose SMART client asks for `asked`, while the EHR lets the client be granted `allowed` only. */
async function smartRecipient(clientId: string, asked: string, allowed: string): Promise<string> {
  const smart = await makeSmartClient(clientId, 'ES384');
  smartEhr.registerClient({ clientId: smart.clientId, jwks: smart.publicJwks, scopes: allowed });
  const res = await svc.request('POST', '/api/endpoints', {
    token: await svc.token('admin'),
    body: { name: `Referring EHR (${clientId})`, baseUrl: smartEhr.baseUrl, auth: { type: 'smart-backend', clientId: smart.clientId, privateKeyJwk: smart.privateKeyJwk, scope: asked }, allowInsecureHttp: true },
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

/** Signs a case sent to `recipientEndpoint` and waits for its delivery to settle. */
async function signedAndSettled(recipientEndpoint: string): Promise<{ caseId: string; delivery: DeliveryView | undefined }> {
  const intake = referredIntake();
  const caseId = await openCaseIn(svc, cm, 'assigned', intake);
  // The recipient is accepted on the scope its registration asks for.
  expect((await svc.request('POST', `/api/cases/${caseId}/recipients`, { token: cm, body: { endpointId: recipientEndpoint } })).status).toBe(201);
  expect((await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: opinionFor(intake) })).status).toBe(200);
  expect((await svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token: specialist })).status).toBe(201);
  const [delivery] = await eventually(() => deliveries(caseId), (d) => ['delivered', 'failed', 'needs_review'].includes(d[0]?.state ?? ''), 30_000);
  return { caseId, delivery };
}

/** FHIR writes the sandbox EHR received since `since` (its token endpoint's POSTs left out), with their status. */
const fhirWritesSince = (since: number) =>
  smartEhr
    .requests()
    .filter((r) => r.at >= since && r.method !== 'GET' && !r.target.startsWith('/auth/'))
    .map((r) => `${r.method} ${r.target.split('?')[0] ?? ''} ${r.status ?? ''}`);

it('writes only the DiagnosticReport where the EHR grants less than the scope asked for (the token response says so), and delivers it', async () => {
  // The registration asks to write all three; the EHR grants this client reports only (SMART Backend
  // Services: the token response's scope "can be different from the scopes requested").
  const asked = 'system/*.read system/DiagnosticReport.write system/DocumentReference.write system/Communication.write';
  const recipientEndpoint = await smartRecipient('sob-wb-granted-reports-only', asked, 'system/*.read system/DiagnosticReport.write');
  const since = Date.now();
  const { caseId, delivery } = await signedAndSettled(recipientEndpoint);
  expect(delivery).toMatchObject({ state: 'delivered', lastError: null, attempts: 1 });
  const [report] = await searchSandbox<DiagnosticReport>(smartEhr, 'any', 'DiagnosticReport', { identifier: `${REPORT_IDENTIFIER_SYSTEM}|${caseId}-v1` });
  expect(delivery?.remoteIds).toEqual({ DiagnosticReport: report?.id });
  // One transaction carrying the report alone: nothing the token does not allow was sent.
  expect(fhirWritesSince(since)).toEqual(['POST / 200']);
  expect(smartEhr.writtenResources().filter((w) => w.at >= since).map((w) => w.resourceType)).toEqual(['DiagnosticReport']);
  expect(await searchSandbox(smartEhr, 'any', 'DocumentReference', { identifier: `${REPORT_IDENTIFIER_SYSTEM}|${caseId}-v1` })).toHaveLength(0);
  expect(await searchSandbox(smartEhr, 'any', 'Communication', { identifier: `${REPORT_COMMUNICATION_SYSTEM}|${caseId}-v1` })).toHaveLength(0);
}, 60_000);

it('delivers where the EHR grants no Practitioner read: the physician is not looked up there, and the Communication names them by NPI', async () => {
  // A registration that may find the child, look its report up and write it with its message, but
  // read no Practitioner: searching the referring physician there would be refused (403).
  const granted = 'system/Patient.read system/DiagnosticReport.read system/Communication.read system/DiagnosticReport.write system/Communication.write';
  const recipientEndpoint = await smartRecipient('sob-wb-no-practitioner-read', granted, granted);
  const since = Date.now();
  const { caseId, delivery } = await signedAndSettled(recipientEndpoint);
  expect(delivery).toMatchObject({ state: 'delivered', lastError: null, attempts: 1 });
  const [message] = await searchSandbox<Communication>(smartEhr, 'any', 'Communication', { identifier: `${REPORT_COMMUNICATION_SYSTEM}|${caseId}-v1` });
  const { name, npi } = referredIntake().referringPhysician;
  expect(message?.recipient).toEqual([{ type: 'Practitioner', identifier: { system: NPI_SYSTEM, value: npi }, display: name }]);
  expect(delivery?.remoteIds).toMatchObject({ Communication: message?.id });
  expect(smartEhr.requests().filter((r) => r.at >= since && r.target.startsWith('/Practitioner'))).toEqual([]);
}, 60_000);

it('fails for good, naming the scope granted, where the EHR grants no DiagnosticReport create: nothing is sent', async () => {
  const recipientEndpoint = await smartRecipient('sob-wb-granted-read-only', 'system/*.read system/DiagnosticReport.write', 'system/*.read');
  const since = Date.now();
  const { delivery } = await signedAndSettled(recipientEndpoint);
  // Permanent: one attempt, not the three a passing failure gets.
  expect(delivery).toMatchObject({ state: 'failed', attempts: 1 });
  expect(delivery?.lastError).toContain('granted the SMART scope "system/*.read"');
  expect(delivery?.lastError).toContain('DiagnosticReport');
  expect(fhirWritesSince(since)).toEqual([]);
}, 60_000);

it('refuses, naming endpointId, a recipient whose SMART scope cannot create DiagnosticReports there', async () => {
  const smart = await makeSmartClient('sob-wb-read-only', 'ES384');
  smartEhr.registerClient({ clientId: smart.clientId, jwks: smart.publicJwks });
  const res = await svc.request('POST', '/api/endpoints', {
    token: await svc.token('admin'),
    // No scope: the default, system/*.read, is what a record source needs; a recipient needs to write.
    body: { name: 'Referring EHR (read only)', baseUrl: smartEhr.baseUrl, auth: { type: 'smart-backend', clientId: smart.clientId, privateKeyJwk: smart.privateKeyJwk }, allowInsecureHttp: true },
  });
  expect(res.status).toBe(201);
  const readOnly = ((await res.json()) as { id: string }).id;
  const caseId = await openCaseIn(svc, cm, 'assigned', referredIntake());
  const refused = await svc.request('POST', `/api/cases/${caseId}/recipients`, { token: cm, body: { endpointId: readOnly } });
  expect(refused.status).toBe(422);
  const problem = (await refused.json()) as { detail: string; errors: { field: string }[] };
  expect(problem.errors.map((e) => e.field)).toEqual(['endpointId']);
  expect(problem.detail).toContain('DiagnosticReport');
  expect(((await (await svc.request('GET', `/api/cases/${caseId}/recipients`, { token: cm })).json()) as { items: unknown[] }).items).toEqual([]);
}, 60_000);

it('records what an amendment wrote even while the note it replaces cannot be updated, so the next version replaces the note that is current', async () => {
  // Its own registration of the EHR (transaction offered), so its circuit breaker is its own.
  const res = await svc.request('POST', '/api/endpoints', {
    token: await svc.token('admin'),
    body: { name: 'Referring EHR (note updates failing)', baseUrl: ehr.baseUrl, auth: { type: 'none' }, allowInsecureHttp: true },
  });
  expect(res.status).toBe(201);
  const recipientEndpoint = ((await res.json()) as { id: string }).id;
  const intake = referredIntake();
  const caseId = await openCaseIn(svc, cm, 'assigned', intake);
  expect((await svc.request('POST', `/api/cases/${caseId}/recipients`, { token: cm, body: { endpointId: recipientEndpoint } })).status).toBe(201);
  const settledVersion = async (version: number): Promise<DeliveryView> => {
    const all = await eventually(() => deliveries(caseId), (d) => d.some((x) => x.version === version && ['delivered', 'failed', 'needs_review'].includes(x.state)), 30_000);
    return all.find((x) => x.version === version) as DeliveryView;
  };
  const signVersion = async (followUp: string): Promise<void> => {
    expect((await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: opinionFor(intake, { followUp }) })).status).toBe(200);
    expect((await svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token: specialist })).status).toBe(201);
  };
  const notesOf = (version: number) => searchSandbox<DocumentReference>(ehr, 'none', 'DocumentReference', { identifier: `${REPORT_IDENTIFIER_SYSTEM}|${caseId}-v${version}` });

  await signVersion('Endocrinology review in 3 months.');
  expect((await settledVersion(1)).state).toBe('delivered');

  // Version 2 is written in one transaction; marking version 1's note superseded then fails every time.
  const down = ehr.faults.add({ match: 'PUT /DocumentReference/*', action: { kind: 'unavailable' } });
  let second: DeliveryView;
  try {
    await signVersion('Amended: endocrinology review in 6 weeks.');
    second = await settledVersion(2);
  } finally {
    ehr.faults.remove(down);
  }
  // The amendment is in the chart and the physician told: on its last attempt the delivery is recorded
  // delivered, the note it replaces left current with the reason (as when the EHR refuses the update).
  expect(second.state).toBe('delivered');
  const { timeline } = (await (await svc.request('GET', `/api/cases/${caseId}`, { token: cm })).json()) as { timeline: { type: string; data: Record<string, unknown> }[] };
  const delivered2 = timeline.find((e) => e.type === 'report_delivered' && e.data.version === 2);
  expect(delivered2?.data.previousDocument).toMatchObject({ state: 'left-current', reason: expect.stringMatching(/^the recipient kept failing to update it/) as unknown });
  // What is in the chart is on record: the amended report, its note and the Communication.
  const [report2] = await reportsOf(caseId, 2);
  const [note2] = await notesOf(2);
  const [message2] = await searchSandbox<Communication>(ehr, 'none', 'Communication', { identifier: `${REPORT_COMMUNICATION_SYSTEM}|${caseId}-v2` });
  expect(report2?.status).toBe('amended');
  expect(second.remoteIds).toEqual({ DiagnosticReport: report2?.id, DocumentReference: note2?.id, Communication: message2?.id });

  // So version 3 replaces the note that is current in that chart, version 2's, and marks it superseded.
  await signVersion('Amended again: endocrinology review in 4 weeks.');
  expect((await settledVersion(3)).state).toBe('delivered');
  const [note3] = await notesOf(3);
  expect(note3?.relatesTo).toEqual([{ code: 'replaces', target: { reference: `DocumentReference/${note2?.id}` } }]);
  expect((await notesOf(2))[0]?.status).toBe('superseded');
}, 90_000);

it('leaves the replaced note current, sending no update, where the EHR granted create but not update on DocumentReference, and says the scope was not granted', async () => {
  // SMART v2: the EHR lets this client create notes (.c) but not update them (no .u): marking the
  // previous version's note superseded would be refused (403) whatever the CapabilityStatement offers.
  const granted = 'system/*.read system/DiagnosticReport.write system/DocumentReference.c system/Communication.write';
  const recipientEndpoint = await smartRecipient('sob-wb-docref-create-only', granted, granted);
  const intake = referredIntake();
  const caseId = await openCaseIn(svc, cm, 'assigned', intake);
  expect((await svc.request('POST', `/api/cases/${caseId}/recipients`, { token: cm, body: { endpointId: recipientEndpoint } })).status).toBe(201);
  const signVersion = async (followUp: string): Promise<DeliveryView> => {
    const version = ((await deliveries(caseId)).length) + 1;
    expect((await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: opinionFor(intake, { followUp }) })).status).toBe(200);
    expect((await svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token: specialist })).status).toBe(201);
    const all = await eventually(() => deliveries(caseId), (d) => d.some((x) => x.version === version && ['delivered', 'failed', 'needs_review'].includes(x.state)), 30_000);
    return all.find((x) => x.version === version) as DeliveryView;
  };
  const first = await signVersion('Endocrinology review in 3 months.');
  expect(first).toMatchObject({ state: 'delivered', lastError: null });
  const previousNote = first.remoteIds.DocumentReference;
  expect(previousNote).toBeDefined();

  const since = Date.now();
  const second = await signVersion('Amended: endocrinology review in 6 weeks.');
  expect(second).toMatchObject({ state: 'delivered', lastError: null, attempts: 1 });
  // The amendment and its own note were written; no update of the previous note was attempted.
  expect(second.remoteIds.DocumentReference).toBeDefined();
  expect(fhirWritesSince(since).filter((w) => w.startsWith('PUT'))).toEqual([]);
  const [note1] = await searchSandbox<DocumentReference>(smartEhr, 'any', 'DocumentReference', { identifier: `${REPORT_IDENTIFIER_SYSTEM}|${caseId}-v1` });
  expect(note1?.status).toBe('current');
  // Recorded like a refused supersede, with the reason the case manager reads.
  const { timeline } = (await (await svc.request('GET', `/api/cases/${caseId}`, { token: cm })).json()) as { timeline: { type: string; data: Record<string, unknown> }[] };
  const delivered2 = timeline.find((e) => e.type === 'report_delivered' && e.data.version === 2);
  expect(delivered2?.data.previousDocument).toEqual({
    id: previousNote,
    state: 'left-current',
    reason: `the recipient EHR did not grant this client update on DocumentReference (granted SMART scope "${granted}"; superseding the note needs system/DocumentReference.write, .u or .*), so it was not asked to update it`,
  });
}, 90_000);
