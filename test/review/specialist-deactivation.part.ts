/**
 * Deactivating a specialist (`PATCH /api/specialists/:id {active: false}`), black-box against the
 * real service: their open cases are released back to matching (handed to the best other match, or
 * left waiting for a case manager when none fits), each with a timeline event saying why; a case
 * left waiting is announced once (`case.awaiting_assignment`, in the release's transaction); their
 * token opens no case any more; a signed case stays with its signer, untouched.
 */
import { loadDomainData } from '../../src/cases/domain-data';
import type { CaseServiceDeps } from '../../src/cases/case-service';
import type { Database, Queryable } from '../../src/db/database';
import { RELEASED_CASE_ENDED, specialistRefusal } from '../../src/http/case-access';
import { finishInterruptedDeactivations, releaseOpenCases } from '../../src/review/specialist-deactivation';
import { eventually } from '../support/service';
import { startForFile } from '../support/for-file';
import { currentAssignmentId, outboxEventData, sampleOpinionBody, startReviewService, type CaseDetail, type ReviewClient, type Problem } from '../support/review-case';
import type { TestService } from '../support/service';

const NEURO = '2084N0402X';

let svc: TestService;
let cm: ReviewClient;
let admin: string;
startForFile(() => startReviewService('deactivation'), (s) => ({ svc, cm, admin } = s));

interface ReleasedCase {
  caseId: string;
  status: string;
  outcome: 'reassigned' | 'awaiting_assignment';
  previousAssignmentId: string;
  assignment?: { id: string; specialistId: string; method: string };
}
interface PatchedSpecialist {
  id: string;
  active: boolean;
  openCases: number;
  practitioner: unknown;
  released: ReleasedCase[];
}

const deactivate = (id: string) => cm.json<PatchedSpecialist & Problem>('PATCH', `/api/specialists/${id}`, { active: false }, admin);
const assignedTo = async (id: string) => (await cm.json<{ specialist: { id: string } } & Problem>('GET', `/api/cases/${id}/assignment`)).body;

describe('deactivating a specialist', () => {
  it('hands each open case to the best other match (timeline says why), keeps its status and requests, and leaves a signed case alone', async () => {
    const leaving = await cm.addSpecialist(admin, 'Leaving', [NEURO], 'dr-deact-leaving');
    const leaver = await svc.token('specialist', 'dr-deact-leaving');
    const assigned = await cm.assignedCase(leaving);
    const midReview = await cm.assignedCase(leaving);
    const asked = await cm.json<{ id: string }>('POST', `/api/cases/${midReview}/information-requests`, { kind: 'family-upload', message: 'Please upload the EEG report.' }, leaver);
    expect(asked.status).toBe(201);
    const signed = await cm.assignedCase(leaving);
    expect((await cm.json('PUT', `/api/cases/${signed}/opinion`, sampleOpinionBody(), leaver)).status).toBe(200);
    expect((await cm.json('POST', `/api/cases/${signed}/opinion/sign`, undefined, leaver)).status).toBe(201);
    // Added last: the only other neurologist, so the best match for both open cases.
    const cover = await cm.addSpecialist(admin, 'Cover', [NEURO], 'dr-deact-cover');
    const midReviewBefore = await cm.caseDetail(midReview);
    const signedBefore = await cm.caseDetail(signed);

    const res = await deactivate(leaving);

    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: leaving, active: false, openCases: 0 });
    expect(res.body.practitioner).toBeDefined();
    expect(res.body.released.map((r) => [r.caseId, r.outcome, r.status, r.assignment?.specialistId, r.assignment?.method])).toEqual([
      [assigned, 'reassigned', 'assigned', cover, 'matched'],
      [midReview, 'reassigned', 'awaiting_information', cover, 'matched'],
    ]);
    for (const id of [assigned, midReview]) {
      expect((await assignedTo(id)).specialist.id).toBe(cover);
      const event = (await cm.caseDetail(id)).timeline.at(-1);
      expect(event).toMatchObject({ type: 'reassigned', data: { specialistId: cover, previousSpecialistId: leaving, method: 'matched' } });
      expect(event?.reason).toMatch(/^Reassigned from Dr\. Test Leaving to Dr\. Test Cover, best match in Child Neurology: specialist deactivated$/);
    }
    // Mid-review: same status, SLA still paused, the open request stays with the case for the new specialist.
    const midReviewAfter = await cm.caseDetail(midReview);
    expect(midReviewAfter.status).toBe('awaiting_information');
    expect(midReviewAfter.sla).toEqual(midReviewBefore.sla);
    const requests = await cm.json<{ items: { id: string; state: string }[] }>('GET', `/api/cases/${midReview}/information-requests`);
    expect(requests.body.items.map((r) => [r.id, r.state])).toEqual([[asked.body.id, 'open']]);
    // The signed case: still with its signer, no new timeline event.
    const signedAfter = await cm.caseDetail(signed);
    expect(signedAfter.status).toBe('report_signed');
    const assignmentEvents = (d: CaseDetail) => d.timeline.filter((e) => e.type === 'reassigned' || e.type === 'assignment_released');
    expect(assignmentEvents(signedAfter)).toEqual(assignmentEvents(signedBefore));
    expect((await assignedTo(signed)).specialist.id).toBe(leaving);
    // The new specialist works on it.
    expect((await svc.request('GET', `/api/cases/${midReview}`, { token: await svc.token('specialist', 'dr-deact-cover') })).status).toBe(200);
    // Handed over, or signed: each has a specialist, nobody is asked to assign it.
    for (const id of [assigned, midReview, signed]) expect(await outboxEventData(svc, id, 'case.awaiting_assignment')).toEqual([]);
  });

  it("refuses the deactivated specialist's token on every case and case route (403, account inactive), and on the worklist", async () => {
    const gone = await cm.addSpecialist(admin, 'Gone', [NEURO], 'dr-deact-gone');
    const token = await svc.token('specialist', 'dr-deact-gone');
    const open = await cm.assignedCase(gone);
    const signed = await cm.assignedCase(gone);
    expect((await cm.json('PUT', `/api/cases/${signed}/opinion`, sampleOpinionBody(), token)).status).toBe(200);
    expect((await cm.json('POST', `/api/cases/${signed}/opinion/sign`, undefined, token)).status).toBe(201);
    const unassigned = await cm.openCase();
    expect((await deactivate(gone)).status).toBe(200);

    const calls: [string, string, unknown?][] = [
      ['GET', `/api/cases/${signed}`],
      ['GET', `/api/cases/${signed}/opinion`],
      ['GET', `/api/cases/${signed}/assignment`],
      ['GET', `/api/cases/${signed}/information-requests`],
      ['POST', `/api/cases/${signed}/opinion/sign`],
      ['PUT', `/api/cases/${signed}/opinion`, sampleOpinionBody()],
      ['GET', `/api/cases/${open}`],
      ['POST', `/api/cases/${open}/information-requests`, { kind: 'family-upload', message: 'Please upload the MRI.' }],
      ['GET', `/api/cases/${unassigned}`],
    ];
    for (const [method, route, body] of calls) {
      const res = await cm.json<Problem>(method, route, body, token);
      expect({ method, route, status: res.status, detail: res.body.detail }).toEqual({
        method,
        route,
        status: 403,
        detail: 'This specialist account is inactive in the directory: it opens no case.',
      });
    }
    // Also where SPECIALIST_CASE_ACCESS=assigned.
    expect(await specialistRefusal(svc.service.db, signed, 'dr-deact-gone', 'assigned')).toBe('This specialist account is inactive in the directory: it opens no case.');
    const worklist = await cm.json<Problem>('GET', '/api/worklist', undefined, token);
    expect([worklist.status, worklist.body.detail]).toEqual([403, 'This specialist account is inactive in the directory: it opens no case.']);
    // Still signed, still theirs.
    expect((await cm.caseDetail(signed)).status).toBe('report_signed');
    expect((await assignedTo(signed)).specialist.id).toBe(gone);
  });

  it('leaves a case waiting for assignment when no other specialist fits; a case manager then assigns it', async () => {
    await svc.service.db.query('UPDATE specialists SET active = false');
    const last = await cm.addSpecialist(admin, 'Last', [NEURO], 'dr-deact-last');
    const id = await cm.assignedCase(last);
    await cm.move(id, 'in_review');
    const before = await cm.caseDetail(id);

    const res = await deactivate(last);

    expect(res.status).toBe(200);
    expect(res.body.released).toEqual([{ caseId: id, status: 'in_review', outcome: 'awaiting_assignment', previousAssignmentId: expect.any(String) }]);
    const waiting = await cm.caseDetail(id);
    expect(waiting).toMatchObject({ status: 'in_review', assignment: null });
    expect(waiting.sla?.targetDue).toBe(before.sla?.targetDue);
    const event = waiting.timeline.at(-1);
    expect(event).toMatchObject({ type: 'assignment_released', data: { previousSpecialistId: last, previousAssignmentId: res.body.released[0]?.previousAssignmentId } });
    expect(event?.reason).toMatch(/^Released from Dr\. Test Last, no other active specialist fits: specialist deactivated$/);
    const none = await cm.json<Problem>('GET', `/api/cases/${id}/assignment`);
    expect(none.status).toBe(404);
    expect(none.body.detail).toMatch(/waits for a new specialist/);
    // The case managers are told, once: ids and states only (no names, no clinical text).
    const announced = {
      caseId: id,
      status: 'in_review',
      previousAssignmentId: res.body.released[0]?.previousAssignmentId,
      reason: 'specialist deactivated',
      trigger: 'specialist-deactivated',
      slaClock: 'running',
    };
    expect(await outboxEventData(svc, id, 'case.awaiting_assignment')).toEqual([announced]);
    const notes = await eventually(
      async () => (await cm.json<{ items: { type: string; message: string }[] }>('GET', `/api/notifications?caseId=${id}`)).body.items,
      (items) => items.some((n) => n.type === 'case.awaiting_assignment'),
      30_000,
    );
    expect(notes.find((n) => n.type === 'case.awaiting_assignment')?.message).toMatch(
      new RegExp(`no other active specialist fits: .* PUT /api/cases/${id}/assignment .*Its SLA clock keeps running meanwhile\\.$`),
    );
    // A repeated deactivation releases nothing more, and says nothing more.
    const again = await deactivate(last);
    expect([again.status, again.body.released]).toEqual([200, []]);
    expect(await outboxEventData(svc, id, 'case.awaiting_assignment')).toEqual([announced]);
    // No specialist acts on it meanwhile (it has no author to write under), not even one bound to nobody.
    const anyone = await svc.request('GET', `/api/cases/${id}`, { token: await svc.token('specialist', 'dr-deact-anyone') });
    expect(anyone.status).toBe(403);
    // New records meanwhile: the records.updated event says the case has no specialist to review them.
    expect((await cm.json('POST', `/api/cases/${id}/bundle/rebuild`, {})).status).toBe(201);
    expect((await outboxEventData(svc, id, 'records.updated')).map((d) => d.specialist)).toEqual(['none']);

    const next = await cm.addSpecialist(admin, 'Next', [NEURO], 'dr-deact-next');
    const given = await cm.json<{ specialist: { id: string } }>('PUT', `/api/cases/${id}/assignment`, { specialistId: next, reason: 'Dr. Last left the program' });
    expect(given.status).toBe(200);
    expect(given.body.specialist.id).toBe(next);
    const after = await cm.caseDetail(id);
    expect(after.status).toBe('in_review');
    expect(after.timeline.at(-1)).toMatchObject({ type: 'reassigned', data: { specialistId: next, previousSpecialistId: last } });
    expect((await svc.request('GET', `/api/cases/${id}`, { token: await svc.token('specialist', 'dr-deact-next') })).status).toBe(200);
  });

  it('keeps a released case closed to every specialist once it is cancelled without another (it has no assignment, yet is not open to all)', async () => {
    await svc.service.db.query('UPDATE specialists SET active = false');
    const lone = await cm.addSpecialist(admin, 'Lone', [NEURO], 'dr-deact-lone');
    const id = await cm.assignedCase(lone);
    await cm.move(id, 'in_review');
    expect((await deactivate(lone)).body.released).toEqual([expect.objectContaining({ caseId: id, outcome: 'awaiting_assignment' })]);
    await cm.move(id, 'cancelled');
    const anyone = await svc.request('GET', `/api/cases/${id}`, { token: await svc.token('specialist', 'dr-deact-after-cancel') });
    expect(anyone.status).toBe(403);
    expect(((await anyone.json()) as Problem).detail).toBe(RELEASED_CASE_ENDED);
    for (const path of ['bundle', 'opinion', 'report.pdf']) {
      expect((await svc.request('GET', `/api/cases/${id}/${path}`, { token: await svc.token('specialist', 'dr-deact-after-cancel') })).status).toBe(403);
    }
  });

  it('announces a case left waiting in the transaction of its release: a release that does not commit announces nothing', async () => {
    await svc.service.db.query('UPDATE specialists SET active = false');
    const alone = await cm.addSpecialist(admin, 'Alone', [NEURO], 'dr-deact-alone');
    const id = await cm.assignedCase(alone);
    const assignmentId = await currentAssignmentId(svc, id);
    // And one awaiting the family's information: its SLA clock paused.
    const asking = await cm.assignedCase(alone);
    const askingAssignmentId = await currentAssignmentId(svc, asking);
    const asked = await cm.json('POST', `/api/cases/${asking}/information-requests`, { kind: 'family-upload', message: 'Please upload the EEG.' }, await svc.token('specialist', 'dr-deact-alone'));
    expect(asked.status).toBe(201);
    await svc.service.db.query('UPDATE specialists SET active = false WHERE id = $1', [alone]);
    // The process dies before each release commits: the transaction rolls back.
    const db = svc.service.db;
    const crashing: Database = Object.assign(Object.create(db) as Database, {
      transaction: <T>(fn: (tx: Queryable) => Promise<T>): Promise<T> =>
        db.transaction(async (tx) => {
          await fn(tx);
          throw new Error('the process stopped before the commit');
        }),
    });
    const deps: CaseServiceDeps = { db: crashing, config: svc.service.config, domain: loadDomainData() };
    await expect(releaseOpenCases(deps, alone, { sub: `admin-deactivation`, roles: ['admin'] })).rejects.toThrow('the process stopped before the commit');
    expect(await currentAssignmentId(svc, id)).toBe(assignmentId);
    expect(await outboxEventData(svc, id, 'case.awaiting_assignment')).toEqual([]);
    expect(await outboxEventData(svc, asking, 'case.awaiting_assignment')).toEqual([]);

    // Sent again, the release commits, and with it the one announcement.
    const res = await deactivate(alone);
    expect(res.body.released).toEqual([
      { caseId: id, status: 'assigned', outcome: 'awaiting_assignment', previousAssignmentId: assignmentId },
      { caseId: asking, status: 'awaiting_information', outcome: 'awaiting_assignment', previousAssignmentId: askingAssignmentId },
    ]);
    expect(await currentAssignmentId(svc, id)).toBeUndefined();
    expect(await outboxEventData(svc, id, 'case.awaiting_assignment')).toEqual([
      { caseId: id, status: 'assigned', previousAssignmentId: assignmentId, reason: 'specialist deactivated', trigger: 'specialist-deactivated', slaClock: 'running' },
    ]);
    expect(await outboxEventData(svc, asking, 'case.awaiting_assignment')).toEqual([
      { caseId: asking, status: 'awaiting_information', previousAssignmentId: askingAssignmentId, reason: 'specialist deactivated', trigger: 'specialist-deactivated', slaClock: 'paused' },
    ]);
  });

  it('finishes the release on a repeated deactivation (a specialist made inactive without it), and releases nothing twice', async () => {
    const spare = await cm.addSpecialist(admin, 'Spare', [NEURO]);
    const stale = await cm.addSpecialist(admin, 'Stale', [NEURO], 'dr-deact-stale');
    const id = await cm.assignedCase(stale);
    // Inactive, yet still holding the case (say the service stopped half-way through a deactivation).
    await svc.service.db.query('UPDATE specialists SET active = false WHERE id = $1', [stale]);
    expect((await svc.request('GET', `/api/cases/${id}`, { token: await svc.token('specialist', 'dr-deact-stale') })).status).toBe(403);

    const first = await deactivate(stale);
    expect(first.body.released.map((r) => [r.caseId, r.outcome, r.assignment?.specialistId])).toEqual([[id, 'reassigned', spare]]);
    const again = await deactivate(stale);
    expect(again.status).toBe(200);
    expect(again.body.released).toEqual([]);
    expect((await cm.caseDetail(id)).timeline.filter((e) => e.type === 'reassigned')).toHaveLength(1);
    // A change other than a deactivation does not say anything was released.
    const renamed = await cm.json<Record<string, unknown>>('PATCH', `/api/specialists/${stale}`, { userSub: 'dr-deact-stale-2' }, admin);
    expect(renamed.status).toBe(200);
    expect(renamed.body).not.toHaveProperty('released');
  });

  it("tells, when new records arrive for a signed case whose specialist was deactivated, that the case needs another specialist (records.updated: specialist inactive)", async () => {
    const signer = await cm.addSpecialist(admin, 'Signer', [NEURO], 'dr-deact-signer');
    const token = await svc.token('specialist', 'dr-deact-signer');
    const id = await cm.assignedCase(signer);
    expect((await cm.json('PUT', `/api/cases/${id}/opinion`, sampleOpinionBody(), token)).status).toBe(200);
    expect((await cm.json('POST', `/api/cases/${id}/opinion/sign`, undefined, token)).status).toBe(201);
    const rebuild = async () => expect((await cm.json('POST', `/api/cases/${id}/bundle/rebuild`, {})).status).toBe(201);
    const updates = async () => (await outboxEventData(svc, id, 'records.updated')).map((d) => d.specialist);
    await rebuild();
    expect(await updates()).toEqual(['active']);
    expect((await deactivate(signer)).status).toBe(200);
    await rebuild();
    expect(await updates()).toEqual(['active', 'inactive']);
  });

  it('is finished by the SLA sweep when it stopped after the flag was committed: the open cases are released, once', async () => {
    // Another neurologist fits: the case is handed over rather than left waiting.
    await cm.addSpecialist(admin, 'Sweep Cover', [NEURO], 'dr-deact-sweep-cover');
    const gone = await cm.addSpecialist(admin, 'Sweep Gone', [NEURO], 'dr-deact-sweep-gone');
    const id = await cm.assignedCase(gone);
    // The PATCH committed the flag, then the process stopped before releasing anything.
    await svc.service.db.query('UPDATE specialists SET active = false WHERE id = $1', [gone]);
    const deps: CaseServiceDeps = { db: svc.service.db, config: svc.service.config, domain: loadDomainData() };

    const released = await finishInterruptedDeactivations(deps);

    expect(released.filter((r) => r.caseId === id).map((r) => [r.outcome, r.previousAssignmentId === undefined])).toEqual([['reassigned', false]]);
    expect((await assignedTo(id)).specialist.id).not.toBe(gone);
    const event = (await cm.caseDetail(id)).timeline.at(-1);
    expect(event).toMatchObject({ type: 'reassigned', data: { previousSpecialistId: gone } });
    expect(event?.reason).toMatch(/: specialist deactivated$/);
    // Nothing left to finish: the next sweep releases nothing more.
    expect((await finishInterruptedDeactivations(deps)).filter((r) => r.caseId === id)).toEqual([]);
    expect((await cm.caseDetail(id)).timeline.filter((e) => e.type === 'reassigned')).toHaveLength(1);
  });
});
