/**
 * The specialist side of the workflow, black-box against the real service: who may ask for
 * information once a case changed hands, answering requests of a case that ended, and assignment
 * racing a deactivation in the directory.
 */
import { startForFile } from '../support/for-file';
import { startReviewService, type InformationRequestView, type ReviewClient, type Problem } from '../support/review-case';
import { eventually, type TestService } from '../support/service';

const NEURO = '2084N0402X';

let svc: TestService;
let cm: ReviewClient;
let admin: string;
startForFile(() => startReviewService('sp'), (s) => ({ svc, cm, admin } = s));

describe('information requests', () => {
  it('withdraws the open requests of a case that is cancelled, and refuses to answer one then (409)', async () => {
    const neuro = await cm.addSpecialist(admin, 'Cancelled', [NEURO], 'dr-sp-cancelled');
    const token = await svc.token('specialist', 'dr-sp-cancelled');
    const id = await cm.assignedCase(neuro);
    const asked = await cm.json<InformationRequestView>('POST', `/api/cases/${id}/information-requests`, { kind: 'family-upload', message: 'Please upload the EEG report.' }, token);
    expect(asked.status).toBe(201);
    expect((await cm.json('POST', `/api/cases/${id}/transitions`, { to: 'cancelled', reason: 'The family withdrew the request.' })).status).toBe(200);

    // Withdrawn with the case, in the same transaction: nothing shows as still asked of the family.
    const requests = await cm.informationRequests(id);
    expect(requests.map((r) => [r.id, r.state])).toEqual([[asked.body.id, 'withdrawn']]);
    const late = await cm.json<Problem & { state?: string }>('POST', `/api/cases/${id}/information-requests/${asked.body.id}/answer`, { answer: 'EEG report uploaded.' });
    expect(late.status).toBe(409);
    expect(late.body.state).toBe('withdrawn');
    const timeline = (await cm.json<{ status: string; timeline: { type: string; data: { requestIds?: string[] } }[] }>('GET', `/api/cases/${id}`)).body;
    expect(timeline.status).toBe('cancelled');
    expect(timeline.timeline.filter((e) => e.type === 'information_requests_withdrawn').map((e) => e.data.requestIds)).toEqual([[asked.body.id]]);
  });

  it('refuses a request from the specialist the case was taken from, also when the new one has no bound subject (403, the SLA keeps running)', async () => {
    const previous = await cm.addSpecialist(admin, 'Previous', [NEURO], 'dr-sp-previous');
    const next = await cm.addSpecialist(admin, 'Unbound', [NEURO]);
    const id = await cm.assignedCase(previous);
    const token = await svc.token('specialist', 'dr-sp-previous');
    expect((await cm.json('PUT', `/api/cases/${id}/assignment`, { specialistId: next, reason: 'Dr. Previous is on leave' })).status).toBe(200);

    const refused = await cm.json<Problem>('POST', `/api/cases/${id}/information-requests`, { kind: 'family-upload', message: 'Please upload the MRI.' }, token);
    expect(refused.status).toBe(403);
    expect(await cm.caseDetail(id)).toMatchObject({ status: 'assigned', sla: { paused: false } });
    expect(await cm.informationRequests(id)).toEqual([]);
    // A token bound to no directory entry still asks for the unbound specialist (as documented).
    const unboundToken = await svc.token('specialist', 'dr-sp-unbound-signin');
    expect((await cm.json('POST', `/api/cases/${id}/information-requests`, { kind: 'family-upload', message: 'Please upload the MRI.' }, unboundToken)).status).toBe(201);
  });
});

/**
 * Runs `send` while an uncommitted change (`sql`) holds the rows it writes, commits that change once
 * the request either answered or waits for those rows, and answers the request's answer.
 */
async function whileHeld(sql: string, params: unknown[], send: () => Promise<{ status: number; body: Problem }>) {
  const { pending } = await svc.service.db.transaction(async (tx) => {
    await tx.query(sql, params);
    let settled = false;
    const request = send().finally(() => {
      settled = true;
    });
    const waiting = async (): Promise<boolean> => {
      const { rows } = await svc.service.db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
      );
      return (rows[0]?.n ?? 0) > 0;
    };
    await eventually(async () => settled || (await waiting()), (done) => done, 10_000);
    // Wrapped: the transaction commits now, not once the request answers (it may wait for this one).
    return { pending: request };
  });
  return pending;
}

describe('assignment racing a deactivation', () => {
  it('does not assign, nor reassign to, a specialist deactivated while the assignment is made', async () => {
    const leaving = await cm.addSpecialist(admin, 'Leaving', [NEURO]);
    const id = await cm.readyCase();
    const assigned = await whileHeld('UPDATE specialists SET active = false WHERE id = $1', [leaving], () => cm.json<Problem>('POST', `/api/cases/${id}/assignment`, { specialistId: leaving }));
    expect(assigned.status).toBe(409);
    expect(assigned.body.field).toBe('specialistId');
    expect((await cm.caseDetail(id)).status).toBe('records_complete');

    const staying = await cm.addSpecialist(admin, 'Staying', [NEURO]);
    const alsoLeaving = await cm.addSpecialist(admin, 'AlsoLeaving', [NEURO]);
    expect((await cm.json('POST', `/api/cases/${id}/assignment`, { specialistId: staying })).status).toBe(201);
    const reassigned = await whileHeld('UPDATE specialists SET active = false WHERE id = $1', [alsoLeaving], () =>
      cm.json<Problem>('PUT', `/api/cases/${id}/assignment`, { specialistId: alsoLeaving, reason: 'Dr. Staying is away' }),
    );
    expect(reassigned.status).toBe(409);
    expect((await cm.json<{ specialist: { id: string } }>('GET', `/api/cases/${id}/assignment`)).body.specialist.id).toBe(staying);
  });
});

describe('specialist directory', () => {
  it('answers 409 naming userSub, not 500, when two specialists are given the same subject at once', async () => {
    const first = await cm.addSpecialist(admin, 'SubjectFirst', [NEURO]);
    const second = await cm.addSpecialist(admin, 'SubjectSecond', [NEURO]);
    // The first change holds the subject in the unique index while the second is made.
    const res = await whileHeld('UPDATE specialists SET user_sub = $2 WHERE id = $1', [first, 'dr-sp-same-subject'], () =>
      cm.json<Problem>('PATCH', `/api/specialists/${second}`, { userSub: 'dr-sp-same-subject' }, admin),
    );
    expect(res.status).toBe(409);
    expect(res.body.field).toBe('userSub');
    expect((await cm.json<{ userSub: string | null }>('GET', `/api/specialists/${second}`, undefined, admin)).body.userSub).toBeNull();
  });
});
