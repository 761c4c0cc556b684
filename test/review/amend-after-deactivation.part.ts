/**
 * A signed report whose author was deactivated since, and that now needs an amendment (new records
 * came in): the author opens nothing any more, and the deactivation left the signed case with its
 * signer. A case manager gives it to another specialist with `PUT /api/cases/:id/assignment` — the one
 * reassignment of a signed case there is, allowed only while its assignee is inactive. The case keeps
 * its status; the new specialist writes, signs and has delivered the amended version under their own
 * name. Reassigning a signed case whose author is active, or a closed or cancelled one, stays refused.
 * Black-box against the real service and a sandbox referring EHR.
 */
import type { DiagnosticReport, DocumentReference, Practitioner } from 'fhir/r4';
import type { Intake } from '../../src/cases/intake-schema';
import { REPORT_IDENTIFIER_SYSTEM } from '../../src/delivery/report-resources';
import type { SandboxServer } from '../../src/sandbox';
import { startForFile } from '../support/for-file';
import { opinionFor, referredIntake, searchSandbox } from '../support/opinion-case';
import { sampleIntake } from '../support/intake';
import { deliveryOnceIn, startServiceAndReferringEhr } from '../support/referring-ehr-world';
import { ReviewClient, type Problem, type TimelineEvent } from '../support/review-case';
import { registerOpenEndpoint } from '../support/sandbox-case';
import { eventually, type TestService } from '../support/service';

const NEURO = '2084N0402X';
const INACTIVE = 'This specialist account is inactive in the directory: it opens no case.';
const SIGNED_REFUSAL = /its report is signed, and a correction is made by its author, so it is not reassigned\.$/;

let svc: TestService;
let ehr: SandboxServer;
let cm: ReviewClient;
let admin: string;
let endpointId: string;

startForFile(() => startServiceAndReferringEhr({ env: { DELIVERY_BACKOFF_MS: '50', DELIVERY_ATTEMPTS: '3' } }), (started) => ({ svc, ehr } = started));

beforeAll(async () => {
  endpointId = await registerOpenEndpoint(svc, 'Referring EHR', ehr.baseUrl);
  cm = new ReviewClient(svc, await svc.token('case_manager', 'cm-amend'));
  admin = await svc.token('admin', 'admin-amend');
});

interface CaseDetail {
  status: string;
  timeline: TimelineEvent[];
}
interface AssignmentView {
  id: string;
  method: string;
  specialist: { id: string };
}
interface DeliveryView {
  version: number;
  state: string;
  remoteIds: Record<string, string>;
}
interface OpinionView {
  current: { version: number; status: string; signedBy: string; specialist: { name: string; npi?: string } } | null;
  versions: { version: number; status: string; signedBy: string; specialist: { name: string; npi?: string } }[];
}

const detail = async (id: string) => (await cm.json<CaseDetail>('GET', `/api/cases/${id}`)).body;
const reassign = (id: string, body: Record<string, unknown>) => cm.json<AssignmentView & Problem>('PUT', `/api/cases/${id}/assignment`, body);
const deactivate = (id: string) => cm.json<{ released: unknown[] } & Problem>('PATCH', `/api/specialists/${id}`, { active: false }, admin);
const npiOf = async (specialistId: string) => (await cm.json<{ npi: string }>('GET', `/api/specialists/${specialistId}`, undefined, admin)).body.npi;

/** A delivery of the case's `version` once it reached one of `states`. */
const deliveryOf = (caseId: string, version: number, states: string[]): Promise<DeliveryView> => deliveryOnceIn(svc, cm.token, caseId, version, states);

/**
 * A paid case of `intake`, records complete, assigned to `specialistId` (token `token`), its opinion
 * signed by them (report_signed); with `recipient`, sent to the referring EHR (the fixture child's).
 */
async function signedCase(specialistId: string, token: string, intake: Intake = sampleIntake(), recipient = false): Promise<string> {
  const id = await cm.openCase(intake);
  await cm.recordsComplete(id);
  expect((await cm.pay(id, 85000)).status).toBe(201);
  expect((await cm.json('POST', `/api/cases/${id}/assignment`, { specialistId })).status).toBe(201);
  if (recipient) expect((await cm.json('POST', `/api/cases/${id}/recipients`, { endpointId })).status).toBe(201);
  expect((await cm.json('PUT', `/api/cases/${id}/opinion`, opinionFor(intake), token)).status).toBe(200);
  expect((await cm.json('POST', `/api/cases/${id}/opinion/sign`, undefined, token)).status).toBe(201);
  return id;
}

/** The case signed by `specialistId` and delivered to the referring EHR (version 1). */
async function deliveredCase(specialistId: string, token: string): Promise<{ id: string; first: DeliveryView }> {
  const id = await signedCase(specialistId, token, referredIntake(), true);
  const first = await deliveryOf(id, 1, ['delivered', 'failed', 'needs_review']);
  expect(first.state).toBe('delivered');
  await eventually(() => detail(id), (d) => d.status === 'delivered', 30_000);
  return { id, first };
}

const byIdentifier = <T extends DiagnosticReport | DocumentReference>(type: T['resourceType'], value: string) =>
  searchSandbox<T>(ehr, 'amend', type, { identifier: `${REPORT_IDENTIFIER_SYSTEM}|${value}` });

describe('a delivered report whose author was deactivated', () => {
  it('is given to another specialist, who writes, signs and has delivered the amendment under their own name', async () => {
    const author = await cm.addSpecialist(admin, 'Author', [NEURO], 'dr-amend-author');
    const amender = await cm.addSpecialist(admin, 'Amender', [NEURO], 'dr-amend-next');
    const authorToken = await svc.token('specialist', 'dr-amend-author');
    const amenderToken = await svc.token('specialist', 'dr-amend-next');
    const intake = referredIntake();
    const { id, first } = await deliveredCase(author, authorToken);

    // While the author is active, the correction is theirs: the reassignment is refused as before.
    const refused = await reassign(id, { specialistId: amender, reason: 'New records call for an amendment' });
    expect(refused.status).toBe(409);
    expect(refused.body.detail).toMatch(/^The case is delivered: /);
    expect(refused.body.detail).toMatch(SIGNED_REFUSAL);

    // The author leaves: the deactivation leaves the delivered case with its signer.
    expect((await deactivate(author)).body.released).toEqual([]);
    expect((await cm.json<Problem>('GET', `/api/cases/${id}`, undefined, authorToken)).body.detail).toBe(INACTIVE);

    // New records arrive; a case manager gives the case to another specialist for the amendment.
    const given = await reassign(id, { specialistId: amender, reason: 'New records call for an amendment; Dr. Author left the program' });
    expect(given.status).toBe(200);
    expect(given.body).toMatchObject({ method: 'named', specialist: { id: amender } });
    expect((await cm.json<AssignmentView>('GET', `/api/cases/${id}/assignment`)).body.specialist.id).toBe(amender);
    const after = await detail(id);
    expect(after.status).toBe('delivered');
    const event = after.timeline.at(-1);
    expect(event).toMatchObject({ type: 'reassigned', data: { specialistId: amender, previousSpecialistId: author, method: 'named' } });
    expect(event?.reason).toBe('Reassigned from Dr. Test Author to Dr. Test Amender: New records call for an amendment; Dr. Author left the program');

    // The new specialist opens it; the old one still opens nothing.
    expect((await cm.json('GET', `/api/cases/${id}`, undefined, amenderToken)).status).toBe(200);
    for (const [method, route] of [['GET', `/api/cases/${id}`], ['GET', `/api/cases/${id}/opinion`], ['PUT', `/api/cases/${id}/opinion`]] as const) {
      const res = await cm.json<Problem>(method, route, method === 'PUT' ? opinionFor(intake) : undefined, authorToken);
      expect([method, route, res.status, res.body.detail]).toEqual([method, route, 403, INACTIVE]);
    }

    // The amendment: written and signed by the new specialist, version 2, the case still delivered.
    const amended = opinionFor(intake, { followUp: 'Endocrinology review in 6 weeks (amended after the new records).' });
    expect((await cm.json('PUT', `/api/cases/${id}/opinion`, amended, amenderToken)).status).toBe(200);
    expect((await detail(id)).status).toBe('delivered');
    const signed = await cm.json<OpinionView>('POST', `/api/cases/${id}/opinion/sign`, undefined, amenderToken);
    expect(signed.status).toBe(201);
    const amenderNpi = await npiOf(amender);
    const authorNpi = await npiOf(author);
    expect(signed.body.versions.map((v) => [v.version, v.status, v.signedBy, v.specialist.name, v.specialist.npi])).toEqual([
      [1, 'final', 'dr-amend-author', 'Dr. Test Author', authorNpi],
      [2, 'amended', 'dr-amend-next', 'Dr. Test Amender', amenderNpi],
    ]);

    // Delivered beside the first, at the recipient that had version 1, authored by the new specialist.
    const second = await deliveryOf(id, 2, ['delivered', 'failed', 'needs_review']);
    expect(second.state).toBe('delivered');
    const [report] = await byIdentifier<DiagnosticReport>('DiagnosticReport', `${id}-v2`);
    expect(report?.status).toBe('amended');
    expect(report?.performer).toEqual([{ reference: '#specialist', display: 'Dr. Test Amender' }]);
    expect((report?.contained?.[0] as Practitioner | undefined)?.identifier).toEqual([{ system: 'http://hl7.org/fhir/sid/us-npi', value: amenderNpi }]);
    const [doc] = await byIdentifier<DocumentReference>('DocumentReference', `${id}-v2`);
    expect(doc?.docStatus).toBe('amended');
    expect(doc?.author).toEqual([{ reference: '#specialist', display: 'Dr. Test Amender' }]);
    expect(doc?.relatesTo?.[0]).toEqual({ code: 'replaces', target: { reference: `DocumentReference/${first.remoteIds.DocumentReference}` } });
    // Version 1 stays at the recipient under its author's name.
    const [original] = await byIdentifier<DiagnosticReport>('DiagnosticReport', `${id}-v1`);
    expect(original?.performer).toEqual([{ reference: '#specialist', display: 'Dr. Test Author' }]);
    expect((await detail(id)).status).toBe('delivered');
    // The old author still opens nothing.
    expect((await cm.json('GET', `/api/cases/${id}`, undefined, authorToken)).status).toBe(403);
  }, 120_000);
});

describe('a signed report whose author was deactivated, before delivery', () => {
  it('is given to another specialist while report_signed, who amends it (back to in_review, then version 2)', async () => {
    const author = await cm.addSpecialist(admin, 'Signer', [NEURO], 'dr-amend-signer');
    // No recipient: nothing is delivered, the case stays report_signed.
    const id = await signedCase(author, await svc.token('specialist', 'dr-amend-signer'));
    expect((await detail(id)).status).toBe('report_signed');
    expect((await deactivate(author)).body.released).toEqual([]);
    // The only active neurologist left, so the best match for the (epilepsy) case.
    await svc.service.db.query('UPDATE specialists SET active = false');
    const next = await cm.addSpecialist(admin, 'Corrector', [NEURO], 'dr-amend-corrector');
    const nextToken = await svc.token('specialist', 'dr-amend-corrector');

    const given = await reassign(id, { match: true, reason: 'Dr. Signer left the program' });
    expect(given.status).toBe(200);
    expect(given.body).toMatchObject({ method: 'matched', specialist: { id: next } });
    const after = await detail(id);
    expect(after.status).toBe('report_signed');
    expect(after.timeline.at(-1)).toMatchObject({ type: 'reassigned', data: { specialistId: next, previousSpecialistId: author, method: 'matched' } });

    expect((await cm.json('PUT', `/api/cases/${id}/opinion`, opinionFor(sampleIntake(), { summary: 'Corrected.' }), nextToken)).status).toBe(200);
    expect((await detail(id)).status).toBe('in_review');
    const signed = await cm.json<OpinionView>('POST', `/api/cases/${id}/opinion/sign`, undefined, nextToken);
    expect(signed.status).toBe(201);
    expect(signed.body.current).toMatchObject({ version: 2, status: 'amended', signedBy: 'dr-amend-corrector', specialist: { name: 'Dr. Test Corrector' } });
  });

  it('reopened for correction (report_signed → in_review) is given to another specialist as it is, without a second deactivation', async () => {
    const author = await cm.addSpecialist(admin, 'Reopened', [NEURO], 'dr-amend-reopened');
    const next = await cm.addSpecialist(admin, 'Taker', [NEURO], 'dr-amend-taker');
    const id = await signedCase(author, await svc.token('specialist', 'dr-amend-reopened'));
    expect((await deactivate(author)).body.released).toEqual([]);
    await cm.move(id, 'in_review');

    const given = await reassign(id, { specialistId: next, reason: 'Dr. Reopened left the program' });
    expect([given.status, given.body.specialist.id]).toEqual([200, next]);
    expect((await detail(id)).timeline.at(-1)).toMatchObject({ type: 'reassigned', data: { specialistId: next, previousSpecialistId: author } });
    expect((await cm.json('GET', `/api/cases/${id}`, undefined, await svc.token('specialist', 'dr-amend-taker'))).status).toBe(200);
  });
});

describe('still refused', () => {
  it('a signed case whose author is active, with the existing message', async () => {
    const author = await cm.addSpecialist(admin, 'Present', [NEURO], 'dr-amend-present');
    const other = await cm.addSpecialist(admin, 'Elsewhere', [NEURO]);
    const id = await signedCase(author, await svc.token('specialist', 'dr-amend-present'));
    const refused = await reassign(id, { specialistId: other, reason: 'x' });
    expect([refused.status, refused.body.detail]).toEqual([
      409,
      'The case is report_signed: its report is signed, and a correction is made by its author, so it is not reassigned.',
    ]);
    expect(refused.body.currentStatus).toBe('report_signed');
    expect((await cm.json<AssignmentView>('GET', `/api/cases/${id}/assignment`)).body.specialist.id).toBe(author);
  });

  it('a closed or cancelled case, even when its author is inactive', async () => {
    const author = await cm.addSpecialist(admin, 'Ended', [NEURO], 'dr-amend-ended');
    const other = await cm.addSpecialist(admin, 'Late', [NEURO]);
    const token = await svc.token('specialist', 'dr-amend-ended');
    const { id: closed } = await deliveredCase(author, token);
    await cm.move(closed, 'closed');
    const cancelled = await signedCase(author, token);
    await cm.move(cancelled, 'cancelled');
    expect((await deactivate(author)).body.released).toEqual([]);

    const closedRefusal = await reassign(closed, { specialistId: other, reason: 'x' });
    expect([closedRefusal.status, closedRefusal.body.currentStatus]).toEqual([409, 'closed']);
    expect(closedRefusal.body.detail).toBe('The case is closed: its report was signed and the case ended, so it is not reassigned.');
    const cancelledRefusal = await reassign(cancelled, { specialistId: other, reason: 'x' });
    expect([cancelledRefusal.status, cancelledRefusal.body.currentStatus]).toEqual([409, 'cancelled']);
    for (const id of [closed, cancelled]) {
      expect((await cm.json<AssignmentView>('GET', `/api/cases/${id}/assignment`)).body.specialist.id).toBe(author);
      expect((await detail(id)).timeline.filter((e) => e.type === 'reassigned')).toEqual([]);
    }
  }, 120_000);

  it('naming the inactive author, or another inactive specialist, for a delivered case (field specialistId)', async () => {
    const author = await cm.addSpecialist(admin, 'Twice', [NEURO], 'dr-amend-twice');
    const gone = await cm.addSpecialist(admin, 'AlsoGone', [NEURO]);
    const { id } = await deliveredCase(author, await svc.token('specialist', 'dr-amend-twice'));
    expect((await deactivate(author)).status).toBe(200);
    expect((await deactivate(gone)).status).toBe(200);
    const same = await reassign(id, { specialistId: author, reason: 'x' });
    expect([same.status, same.body.field]).toEqual([409, 'specialistId']);
    const inactive = await reassign(id, { specialistId: gone, reason: 'x' });
    expect([inactive.status, inactive.body.field]).toEqual([409, 'specialistId']);
    expect(inactive.body.detail).toMatch(/is not active in the directory/);
  }, 120_000);
});
