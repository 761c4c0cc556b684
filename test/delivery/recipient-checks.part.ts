import type { Communication, DiagnosticReport, DocumentReference, Patient } from 'fhir/r4';
import type { Intake } from '../../src/cases/intake-schema';
import { whyNotTheChild } from '../../src/fhir/patient-standing';
import { buildDiagnosticReport, buildDocumentReference, DIAGNOSTIC_REPORT_REPLACES, REPORT_COMMUNICATION_SYSTEM, REPORT_IDENTIFIER_SYSTEM, statusAtRecipient, type ReportFacts } from '../../src/delivery/report-resources';
import type { FaultAction, SandboxServer } from '../../src/sandbox';
import { fixturePatientId } from '../support/fixture-child';
import { openCaseIn, opinionFor, referredIntake, searchSandbox } from '../support/opinion-case';
import { childLookAlike, FAST_DELIVERY_ENV, listDeliveries, startReferringEhr, type DeliveryView } from '../support/referring-ehr-world';
import { registerOpenEndpoint } from '../support/sandbox-case';
import { eventually, FAST_CLIENT, startTestService, type TestService } from '../support/service';
import { SAMPLE_REPORT_FACTS } from '../support/report-facts';

/**
 * What the bridge checks about a recipient before it writes a child's second opinion there:
 * - a Patient id the case manager chooses (or gives when adding the recipient) is read at the
 *   recipient first, and refused (422, naming `patientId`) when it is not the case's child there:
 *   unknown, another birth date, inactive or replaced by another record; an unreachable recipient
 *   saves nothing (502/503);
 * - the one Patient found by identifier, or by name and birth date, is checked the same way before
 *   anything is filed under it: one that is not the child is `needs_review`, nothing written;
 * - a recipient that asks to wait (`Retry-After`) longer than the job's retries would is waited for,
 *   not failed;
 * - a version 2+ is `amended` only at a recipient whose chart holds an earlier version
 *   (https://hl7.org/fhir/R4/valueset-diagnostic-report-status.html); elsewhere it is `final` and
 *   its DocumentReference replaces nothing
 *   (https://hl7.org/fhir/R4/documentreference-definitions.html#DocumentReference.relatesTo).
 */
let svc: TestService;
/** The referring EHR: the fixture child plus look-alike records. */
let ehr: SandboxServer;
/** Another referring EHR, added as a recipient after version 1 went elsewhere. */
let laterEhr: SandboxServer;
/** A referring EHR that fails, drops connections or asks to wait. */
let downEhr: SandboxServer;
let cm: string;
let specialist: string;
let endpointId: string;
let laterEndpointId: string;
let downEndpointId: string;

const CHILD = referredIntake().patient;
const CHILD_ID = fixturePatientId('referring-ehr');

/** A Patient at the referring EHR shaped like the case's child, with `extra` changed. */
const lookAlike = (id: string, extra: Partial<Patient> = {}): Patient => childLookAlike(id, { family: CHILD.name.family, given: [...CHILD.name.given] }, extra);

const OTHER_CHILD = lookAlike('other-child', { name: [{ family: 'Other', given: ['Child'] }], birthDate: '2015-01-09' });
// Own family names, so that matching the fixture child by name and birth date still finds her alone.
const INACTIVE_RECORD = lookAlike('inactive-record', { active: false, name: [{ family: 'Inactive', given: ['Record'] }] });
const REPLACED_RECORD = lookAlike('replaced-record', { name: [{ family: 'Replaced', given: ['Record'] }], link: [{ type: 'replaced-by', other: { reference: `Patient/${CHILD_ID}` } }] });
const TWIN_NAME = { family: 'Candidate', given: ['Twin'] };
const TWIN_A = lookAlike('twin-a', { name: [TWIN_NAME] });
const TWIN_B = lookAlike('twin-b', { name: [TWIN_NAME] });
/** Another child, found at the referring EHR by the MRN a recipient is added with. */
const MRN_SYSTEM = 'urn:oid:2.16.840.1.113883.19.5.99999.2';
const MRN_OTHER_CHILD = lookAlike('mrn-other-child', { name: [{ family: 'Mrn', given: ['Other'] }], birthDate: '2015-01-09', identifier: [{ system: MRN_SYSTEM, value: 'MRN-0042' }] });

interface RecipientView {
  id: string;
  endpointId: string;
  remotePatientId: string | null;
}

interface Problem {
  status: number;
  title: string;
  detail: string;
  errors?: { field: string; detail: string }[];
}

beforeAll(async () => {
  [svc, ehr, laterEhr, downEhr] = await Promise.all([
    startTestService(FAST_DELIVERY_ENV, FAST_CLIENT),
    startReferringEhr(),
    startReferringEhr({ name: 'later-ehr' }),
    startReferringEhr({ name: 'down-ehr' }),
  ]);
  await ehr.load([OTHER_CHILD, INACTIVE_RECORD, REPLACED_RECORD, TWIN_A, TWIN_B, MRN_OTHER_CHILD]);
  cm = await svc.token('case_manager', 'cm-checks');
  specialist = await svc.token('specialist', 'spec-checks');
  [endpointId, laterEndpointId, downEndpointId] = await Promise.all([
    registerOpenEndpoint(svc, 'Referring EHR', ehr.baseUrl),
    registerOpenEndpoint(svc, 'Referring EHR added later', laterEhr.baseUrl),
    registerOpenEndpoint(svc, 'Referring EHR going down', downEhr.baseUrl),
  ]);
}, 60_000);

afterAll(async () => {
  await Promise.all([svc.stop(), ehr.stop(), laterEhr.stop(), downEhr.stop()]);
});

const deliveries = (caseId: string): Promise<DeliveryView[]> => listDeliveries(svc, cm, caseId);

async function recipients(caseId: string): Promise<RecipientView[]> {
  const res = await svc.request('GET', `/api/cases/${caseId}/recipients`, { token: cm });
  return ((await res.json()) as { items: RecipientView[] }).items;
}

/** The delivery of `version` to the recipient at `endpoint`, once in one of `states`. */
async function until(caseId: string, version: number, states: string[], endpoint = endpointId): Promise<DeliveryView> {
  const mine = (all: DeliveryView[]) => all.find((d) => d.version === version && d.endpointId === endpoint);
  const all = await eventually(() => deliveries(caseId), (d) => states.includes(mine(d)?.state ?? ''), 60_000);
  return mine(all) as DeliveryView;
}

type PatientSelector = { id: string } | { identifier: { system: string; value: string } };

async function addRecipient(caseId: string, endpoint: string, patient?: PatientSelector): Promise<string> {
  const res = await svc.request('POST', `/api/cases/${caseId}/recipients`, { token: cm, body: { endpointId: endpoint, ...(patient ? { patient } : {}) } });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

async function sign(caseId: string, intake: Intake, followUp?: string): Promise<void> {
  expect((await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: opinionFor(intake, followUp ? { followUp } : {}) })).status).toBe(200);
  expect((await svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token: specialist })).status).toBe(201);
}

/** A signed case for a child named `given family` (the fixture child's birth date), its one recipient the referring EHR. */
async function signedCase(name: { family: string; given: string[] }, endpoint = endpointId): Promise<{ caseId: string; recipientId: string }> {
  const intake = referredIntake({ patient: { ...CHILD, name } });
  const caseId = await openCaseIn(svc, cm, 'assigned', intake);
  const recipientId = await addRecipient(caseId, endpoint);
  await sign(caseId, intake);
  return { caseId, recipientId };
}

const choose = (caseId: string, recipientId: string, patientId: string) =>
  svc.request('POST', `/api/cases/${caseId}/recipients/${recipientId}/patient`, { token: cm, body: { patientId } });

/** Expects a 422 naming `patientId`, its detail matching `detail`. */
async function expectRefused(res: Response, detail: RegExp): Promise<void> {
  const problem = (await res.json()) as Problem;
  expect({ status: res.status, fields: problem.errors?.map((e) => e.field) }).toEqual({ status: 422, fields: ['patientId'] });
  expect(problem.detail).toMatch(detail);
}

/** Nothing was saved: the recipient has no patient, its delivery still waits in review, untouched. */
async function expectNothingSaved(caseId: string, before: DeliveryView, endpoint = endpointId): Promise<void> {
  expect((await recipients(caseId)).find((r) => r.endpointId === endpoint)?.remotePatientId).toBeNull();
  const after = (await deliveries(caseId)).find((d) => d.id === before.id);
  expect(after).toMatchObject({ state: 'needs_review', attempts: before.attempts, reviewReason: before.reviewReason });
}

const reportsAt = <T extends DiagnosticReport | DocumentReference | Communication>(server: SandboxServer, type: string, system: string, value: string) =>
  searchSandbox<T>(server, 'none', type, { identifier: `${system}|${value}` });

describe('a patient chosen at the recipient', () => {
  it('refuses an id that does not exist there with 422 naming patientId, and saves nothing', async () => {
    const { caseId, recipientId } = await signedCase({ family: 'Unmatched', given: ['Nobody'] });
    const review = await until(caseId, 1, ['needs_review', 'delivered', 'failed']);
    expect(review.state).toBe('needs_review');

    await expectRefused(await choose(caseId, recipientId, 'no-such-patient'), /Patient\/no-such-patient does not exist at the recipient/);
    await expectNothingSaved(caseId, review);
    expect(await reportsAt(ehr, 'DiagnosticReport', REPORT_IDENTIFIER_SYSTEM, `${caseId}-v1`)).toHaveLength(0);
  }, 60_000);

  it('refuses another birth date, an inactive record and a record replaced by another, saying which', async () => {
    const { caseId, recipientId } = await signedCase({ family: 'Unmatched', given: ['Somebody'] });
    const review = await until(caseId, 1, ['needs_review', 'delivered', 'failed']);
    expect(review.state).toBe('needs_review');

    await expectRefused(await choose(caseId, recipientId, OTHER_CHILD.id as string), new RegExp(`born 2015-01-09.*${CHILD.birthDate}`));
    await expectRefused(await choose(caseId, recipientId, INACTIVE_RECORD.id as string), /inactive/);
    await expectRefused(await choose(caseId, recipientId, REPLACED_RECORD.id as string), new RegExp(`replaced by Patient/${CHILD_ID}`));
    await expectNothingSaved(caseId, review);
  }, 60_000);

  it('reads a recorded candidate again: refuses one that became inactive, takes the other, and the delivery writes under it', async () => {
    const { caseId, recipientId } = await signedCase(TWIN_NAME);
    const review = await until(caseId, 1, ['needs_review', 'delivered', 'failed']);
    expect(review.state).toBe('needs_review');
    expect(review.candidates.map((c) => c.id).sort()).toEqual(['twin-a', 'twin-b']);

    // Merged away at the recipient after the candidates were recorded.
    await ehr.load([{ ...TWIN_B, active: false }]);
    try {
      await expectRefused(await choose(caseId, recipientId, 'twin-b'), /inactive/);
      await expectNothingSaved(caseId, review);

      const chosen = await choose(caseId, recipientId, 'twin-a');
      expect(chosen.status).toBe(200);
      expect(await chosen.json()).toMatchObject({ id: recipientId, endpointId, remotePatientId: 'twin-a' });
      expect((await until(caseId, 1, ['delivered', 'failed', 'needs_review'])).state).toBe('delivered');
      const [report] = await reportsAt<DiagnosticReport>(ehr, 'DiagnosticReport', REPORT_IDENTIFIER_SYSTEM, `${caseId}-v1`);
      expect(report?.subject?.reference).toBe('Patient/twin-a');

      // Filed under twin-a: another patient now would file its amendments in another chart.
      await ehr.load([TWIN_B]);
      const moved = await choose(caseId, recipientId, 'twin-b');
      expect(moved.status).toBe(409);
      expect(((await moved.json()) as Problem).detail).toMatch(/Version 1 of the report is filed at this recipient under Patient\/twin-a/);
      expect((await recipients(caseId)).find((r) => r.id === recipientId)?.remotePatientId).toBe('twin-a');
      expect((await choose(caseId, recipientId, 'twin-a')).status).toBe(200);
    } finally {
      await ehr.load([TWIN_B]);
    }
  }, 60_000);

  it('reads a patient id given with the recipient before the first write, and asks for review when it is another child', async () => {
    const intake = referredIntake();
    const caseId = await openCaseIn(svc, cm, 'assigned', intake);
    await addRecipient(caseId, endpointId, { id: OTHER_CHILD.id as string });
    await sign(caseId, intake);
    const review = await until(caseId, 1, ['needs_review', 'delivered', 'failed']);
    expect(review.state).toBe('needs_review');
    expect(review.reviewReason).toMatch(/born 2015-01-09/);
    // The id given with the recipient is not on record until it is checked: the child is not found there.
    expect(review.reviewCode).toBe('patient-not-found');
    expect(await reportsAt(ehr, 'DiagnosticReport', REPORT_IDENTIFIER_SYSTEM, `${caseId}-v1`)).toHaveLength(0);
  }, 60_000);

  it('checks the one patient found by identifier before the first write, and asks for review when it is another child', async () => {
    const intake = referredIntake();
    const caseId = await openCaseIn(svc, cm, 'assigned', intake);
    const recipientId = await addRecipient(caseId, endpointId, { identifier: { system: MRN_SYSTEM, value: 'MRN-0042' } });
    await sign(caseId, intake);
    const review = await until(caseId, 1, ['needs_review', 'delivered', 'failed']);
    expect(review.state).toBe('needs_review');
    expect(review.reviewReason).toBe(`Patient/mrn-other-child, the one patient at the recipient matching the identifier, is not the case's child: it is of a child born 2015-01-09, the case's child was born ${CHILD.birthDate}.`);
    expect(review.candidates.map((c) => c.id)).toEqual(['mrn-other-child']);
    expect(review.reviewCode).toBe('patient-not-found');
    expect((await recipients(caseId)).find((r) => r.id === recipientId)?.remotePatientId).toBeNull();
    // Nothing at the EHR: no report, note or message.
    expect(await reportsAt(ehr, 'DiagnosticReport', REPORT_IDENTIFIER_SYSTEM, `${caseId}-v1`)).toHaveLength(0);
    expect(await reportsAt(ehr, 'DocumentReference', REPORT_IDENTIFIER_SYSTEM, `${caseId}-v1`)).toHaveLength(0);
    expect(await reportsAt(ehr, 'Communication', REPORT_COMMUNICATION_SYSTEM, `${caseId}-v1`)).toHaveLength(0);
    // The candidate is checked again when chosen: refused.
    await expectRefused(await choose(caseId, recipientId, 'mrn-other-child'), /born 2015-01-09/);
  }, 60_000);

  it.each([
    ['inactive', INACTIVE_RECORD, /inactive there \(active: false\)/],
    ['replaced by another record', REPLACED_RECORD, new RegExp(`replaced by Patient/${CHILD_ID} there`)],
  ])('does not take the one patient matching the name and birth date when it is %s: review, nothing written', async (_, record, reason) => {
    const { caseId, recipientId } = await signedCase({ family: record.name?.[0]?.family ?? '', given: [...(record.name?.[0]?.given ?? [])] });
    const review = await until(caseId, 1, ['needs_review', 'delivered', 'failed']);
    expect(review.state).toBe('needs_review');
    expect(review.reviewReason).toMatch(/matching the child's name and exact birth date/);
    expect(review.reviewReason).toMatch(reason);
    expect(review.candidates.map((c) => c.id)).toEqual([record.id]);
    expect((await recipients(caseId)).find((r) => r.id === recipientId)?.remotePatientId).toBeNull();
    expect(await reportsAt(ehr, 'DiagnosticReport', REPORT_IDENTIFIER_SYSTEM, `${caseId}-v1`)).toHaveLength(0);
    expect(await reportsAt(ehr, 'Communication', REPORT_COMMUNICATION_SYSTEM, `${caseId}-v1`)).toHaveLength(0);
  }, 60_000);

  it('answers 502/503 and saves nothing when the recipient fails, drops the connection or is paused', async () => {
    const { caseId, recipientId } = await signedCase({ family: 'Unmatched', given: ['Unreachable'] }, downEndpointId);
    const review = await until(caseId, 1, ['needs_review', 'delivered', 'failed'], downEndpointId);
    expect(review.state).toBe('needs_review');

    /** Chooses the fixture child while the recipient answers with `action`; expects `status`, nothing saved. */
    const chooseWhile = async (action: FaultAction, status: number): Promise<Problem & { retryAt?: string }> => {
      const rule = downEhr.faults.add({ match: 'GET /Patient/*', action });
      try {
        const res = await choose(caseId, recipientId, CHILD_ID);
        const problem = (await res.json()) as Problem & { retryAt?: string };
        expect({ status: res.status, detail: problem.detail }).toEqual({ status, detail: expect.stringMatching(/could not be asked for the patient: .*Nothing was saved/) });
        // A 5xx's text is logged: it must not name the patient id (some EHRs use the MRN as it).
        expect(problem.detail).not.toContain(CHILD_ID);
        await expectNothingSaved(caseId, review, downEndpointId);
        return problem;
      } finally {
        downEhr.faults.remove(rule);
      }
    };
    expect((await chooseWhile({ kind: 'server-error' }, 502)).detail).toMatch(/answered 500/);
    expect((await chooseWhile({ kind: 'reset' }, 502)).detail).toMatch(/FHIR request failed/);
    // Asked to wait longer than a request may: its circuit is held open, nothing is asked before then.
    const paused = await chooseWhile({ kind: 'unavailable', retryAfterSeconds: 30 }, 503);
    expect(Date.parse(paused.retryAt ?? '')).toBeGreaterThan(Date.now());
    expect(downEhr.requestCount('GET /Patient/*')).toBeGreaterThan(0);
  }, 60_000);
});

describe('the status of a later version at each recipient', () => {
  it('writes version 2 as final, replacing nothing, at a recipient added after version 1 was delivered elsewhere', async () => {
    const intake = referredIntake();
    const caseId = await openCaseIn(svc, cm, 'assigned', intake);
    await addRecipient(caseId, endpointId);
    await sign(caseId, intake);
    expect((await until(caseId, 1, ['delivered', 'failed', 'needs_review'])).state).toBe('delivered');
    await sign(caseId, intake, 'Amended: endocrinology review in 6 weeks.');
    expect((await until(caseId, 2, ['delivered', 'failed', 'needs_review'])).state).toBe('delivered');

    await addRecipient(caseId, laterEndpointId);
    expect((await until(caseId, 2, ['delivered', 'failed', 'needs_review'], laterEndpointId)).state).toBe('delivered');
    expect((await deliveries(caseId)).filter((d) => d.endpointId === laterEndpointId).map((d) => d.version)).toEqual([2]);
    const [report] = await reportsAt<DiagnosticReport>(laterEhr, 'DiagnosticReport', REPORT_IDENTIFIER_SYSTEM, `${caseId}-v2`);
    expect(report?.status).toBe('final');
    const [doc] = await reportsAt<DocumentReference>(laterEhr, 'DocumentReference', REPORT_IDENTIFIER_SYSTEM, `${caseId}-v2`);
    expect(doc).toMatchObject({ docStatus: 'final', status: 'current' });
    expect(doc?.relatesTo).toBeUndefined();
    const [note] = await reportsAt<Communication>(laterEhr, 'Communication', REPORT_COMMUNICATION_SYSTEM, `${caseId}-v2`);
    expect(note?.payload?.[0]?.contentString).not.toMatch(/amended/i);
  }, 90_000);

  it('writes version 2 as final where version 1 failed, and as amended where it was delivered', async () => {
    const intake = referredIntake();
    const caseId = await openCaseIn(svc, cm, 'assigned', intake);
    await addRecipient(caseId, endpointId);
    await addRecipient(caseId, laterEndpointId);
    const refusing = laterEhr.faults.add({ match: 'POST *', action: { kind: 'server-error' } });
    try {
      await sign(caseId, intake);
      expect((await until(caseId, 1, ['delivered', 'failed', 'needs_review'])).state).toBe('delivered');
      expect((await until(caseId, 1, ['delivered', 'failed', 'needs_review'], laterEndpointId)).state).toBe('failed');
    } finally {
      laterEhr.faults.remove(refusing);
    }
    await sign(caseId, intake, 'Amended: endocrinology review in 6 weeks.');
    // Its endpoint's circuit may still be open after the outage: the delivery waits for it, unaided.
    const [first, second, later] = await Promise.all([
      until(caseId, 1, ['delivered']),
      until(caseId, 2, ['delivered', 'failed', 'needs_review']),
      until(caseId, 2, ['delivered', 'failed', 'needs_review'], laterEndpointId),
    ]);
    expect([second.state, later.state]).toEqual(['delivered', 'delivered']);

    // Where version 1 is in the chart: amended, its note replaced (and marked superseded).
    const [amended] = await reportsAt<DiagnosticReport>(ehr, 'DiagnosticReport', REPORT_IDENTIFIER_SYSTEM, `${caseId}-v2`);
    expect(amended?.status).toBe('amended');
    const [amendedDoc] = await reportsAt<DocumentReference>(ehr, 'DocumentReference', REPORT_IDENTIFIER_SYSTEM, `${caseId}-v2`);
    expect(amendedDoc?.docStatus).toBe('amended');
    expect(amendedDoc?.relatesTo).toEqual([{ code: 'replaces', target: { reference: `DocumentReference/${first.remoteIds.DocumentReference}` } }]);
    const [replaced] = await reportsAt<DocumentReference>(ehr, 'DocumentReference', REPORT_IDENTIFIER_SYSTEM, `${caseId}-v1`);
    expect(replaced?.status).toBe('superseded');

    // Where it never arrived: final, replacing nothing.
    expect(await reportsAt(laterEhr, 'DiagnosticReport', REPORT_IDENTIFIER_SYSTEM, `${caseId}-v1`)).toHaveLength(0);
    const [final] = await reportsAt<DiagnosticReport>(laterEhr, 'DiagnosticReport', REPORT_IDENTIFIER_SYSTEM, `${caseId}-v2`);
    expect(final?.status).toBe('final');
    const [finalDoc] = await reportsAt<DocumentReference>(laterEhr, 'DocumentReference', REPORT_IDENTIFIER_SYSTEM, `${caseId}-v2`);
    expect(finalDoc?.docStatus).toBe('final');
    expect(finalDoc?.relatesTo).toBeUndefined();
  }, 120_000);
});

describe('a recipient that asks to wait', () => {
  it.each([
    ['503', { kind: 'unavailable', retryAfterSeconds: 3 }],
    ['429', { kind: 'rate-limit', retryAfterSeconds: 3 }],
  ] as const)('waits for a %s whose Retry-After outlasts the job backoff, asking nothing before then, and delivers', async (_, action) => {
    // Its own registration, so its own circuit breaker (the one of down-ehr above is held 30 s).
    const endpoint = await registerOpenEndpoint(svc, `Referring EHR asking to wait (${action.kind})`, downEhr.baseUrl);
    const intake = referredIntake();
    const caseId = await openCaseIn(svc, cm, 'assigned', intake);
    await addRecipient(caseId, endpoint);
    // The delivery's first request: 3 s to wait, beyond what a request waits (1.5 s here) and far
    // beyond the job's backoff (50 ms, 3 attempts).
    const rule = downEhr.faults.add({ match: 'GET /Patient*', action, nth: 1 });
    try {
      const since = Date.now();
      await sign(caseId, intake);
      // Meanwhile it waits, saying so, not failed.
      const mine = (all: DeliveryView[]) => all.find((d) => d.endpointId === endpoint);
      const waitsOrEnded = (d: DeliveryView | undefined) => /paused by its circuit breaker; waiting/.test(d?.lastError ?? '') || ['delivered', 'failed', 'needs_review'].includes(d?.state ?? '');
      const waiting = mine(await eventually(() => deliveries(caseId), (all) => waitsOrEnded(mine(all)), 10_000));
      expect(waiting).toMatchObject({ state: 'queued', lastError: expect.stringMatching(/^endpoint paused by its circuit breaker; waiting/) as unknown });
      const delivery = await until(caseId, 1, ['delivered', 'failed', 'needs_review'], endpoint);
      // Delivered on its second attempt: the waits spent none.
      expect(delivery).toMatchObject({ state: 'delivered', attempts: 2 });
      expect(await reportsAt(downEhr, 'DiagnosticReport', REPORT_IDENTIFIER_SYSTEM, `${caseId}-v1`)).toHaveLength(1);
      // Nothing asked of the EHR between its answer and the time it named (but the look-up sent beside the refused one).
      const asked = downEhr.requests().filter((r) => r.at >= since);
      const refused = asked.find((r) => r.status === (action.kind === 'unavailable' ? 503 : 429));
      expect(refused?.target).toMatch(/^\/Patient\?/);
      const after = asked.filter((r) => r.at > (refused?.at ?? 0) + 500);
      expect(after.length).toBeGreaterThan(0);
      expect(Math.min(...after.map((r) => r.at)) - (refused?.at ?? 0)).toBeGreaterThanOrEqual(2_900);
    } finally {
      downEhr.faults.remove(rule);
    }
  }, 60_000);
});

describe('statusAtRecipient', () => {
  it('is final, replacing nothing, where no earlier version was written into the chart', () => {
    expect(statusAtRecipient([])).toEqual({ status: 'final' });
    // Failed, cancelled or superseded before anything was written there.
    expect(statusAtRecipient([{ version: 1, remoteIds: {} }])).toEqual({ status: 'final' });
  });

  it('is amended where an earlier report is in the chart, replacing the newest earlier note there', () => {
    expect(statusAtRecipient([{ version: 1, remoteIds: { DiagnosticReport: 'dr-1', DocumentReference: 'doc-1' } }])).toEqual({ status: 'amended', previousDocumentId: 'doc-1', previousReportId: 'dr-1' });
    expect(
      statusAtRecipient([
        { version: 2, remoteIds: { DiagnosticReport: 'dr-2', DocumentReference: 'doc-2' } },
        { version: 1, remoteIds: { DiagnosticReport: 'dr-1', DocumentReference: 'doc-1' } },
      ]),
    ).toEqual({ status: 'amended', previousDocumentId: 'doc-2', previousReportId: 'dr-2' });
    // Version 2 went there without a note (the scope changed): version 3 replaces version 1's.
    expect(
      statusAtRecipient([
        { version: 1, remoteIds: { DiagnosticReport: 'dr-1', DocumentReference: 'doc-1' } },
        { version: 2, remoteIds: { DiagnosticReport: 'dr-2' } },
      ]),
    ).toEqual({ status: 'amended', previousDocumentId: 'doc-1', previousReportId: 'dr-2' });
    // A recipient that takes no DocumentReferences: amended, nothing to replace.
    expect(statusAtRecipient([{ version: 1, remoteIds: { DiagnosticReport: 'dr-1' } }])).toEqual({ status: 'amended', previousReportId: 'dr-1' });
  });

  it('keeps a final DocumentReference free of relatesTo, and a final DiagnosticReport free of replaces, whatever they are given', () => {
    const facts: ReportFacts = { ...SAMPLE_REPORT_FACTS, caseId: 'c-1', version: 2 };
    expect(buildDocumentReference(facts, 'DiagnosticReport/dr-2', 'doc-1').relatesTo).toBeUndefined();
    // Nor does a final DiagnosticReport name one it replaces; an amended one does.
    expect(buildDiagnosticReport({ ...facts, replacesReportId: 'dr-1' }).extension).toBeUndefined();
    expect(buildDiagnosticReport({ ...facts, status: 'amended', replacesReportId: 'dr-1' }).extension).toEqual([
      { url: DIAGNOSTIC_REPORT_REPLACES, valueReference: { reference: 'DiagnosticReport/dr-1' } },
    ]);
    expect(buildDocumentReference({ ...facts, status: 'amended' }, 'DiagnosticReport/dr-2', 'doc-1').relatesTo).toEqual([{ code: 'replaces', target: { reference: 'DocumentReference/doc-1' } }]);
  });
});

describe('whyNotTheChild', () => {
  it('has nothing against the child\'s active record', () => {
    expect(whyNotTheChild(lookAlike('p'), CHILD.birthDate)).toEqual([]);
    expect(whyNotTheChild(lookAlike('p', { active: undefined }), CHILD.birthDate)).toEqual([]);
  });

  it('names every reason: replaced, inactive, another or no birth date', () => {
    const merged = lookAlike('p', { active: false, birthDate: '2015-01-09', link: [{ type: 'replaced-by', other: { reference: 'Patient/q' } }, { type: 'seealso', other: { reference: 'Patient/r' } }] });
    expect(whyNotTheChild(merged, CHILD.birthDate)).toEqual([
      'it was replaced by Patient/q there (link replaced-by): choose that record instead',
      'it is inactive there (active: false)',
      `it is of a child born 2015-01-09, the case's child was born ${CHILD.birthDate}`,
    ]);
    // A partial date is not the exact birth date.
    expect(whyNotTheChild(lookAlike('p', { birthDate: CHILD.birthDate.slice(0, 4) }), CHILD.birthDate)).toHaveLength(1);
    expect(whyNotTheChild(lookAlike('p', { birthDate: undefined }), CHILD.birthDate)).toEqual([`it has no birth date there, so it cannot be confirmed as the child born ${CHILD.birthDate}`]);
  });
});
