/**
 * A signed report reopened for correction (`report_signed → in_review`: new records call for an
 * amendment) whose author was deactivated since: the case is open again, yet no specialist can
 * open it (its specialist is inactive) and the deactivation, which left the signed case alone, did
 * not release it. It waits for a case manager's `PUT /api/cases/:id/assignment`, and the case
 * managers are told so (`case.awaiting_assignment`), once, in the transaction of the reopening.
 * Black-box against the real service.
 */
import { startForFile } from '../support/for-file';
import { currentAssignmentId, outboxEventData, sampleOpinionBody, startReviewService, type Problem, type ReviewClient } from '../support/review-case';
import { eventually, type TestService } from '../support/service';

const NEURO = '2084N0402X';

let svc: TestService;
let cm: ReviewClient;
let admin: string;
startForFile(() => startReviewService('reopened'), (s) => ({ svc, cm, admin } = s));

/** A paid case, records complete, assigned to `specialistId`, its opinion signed by them (report_signed). */
async function signedCase(specialistId: string, token: string): Promise<string> {
  const id = await cm.assignedCase(specialistId);
  expect((await cm.json('PUT', `/api/cases/${id}/opinion`, sampleOpinionBody(), token)).status).toBe(200);
  expect((await cm.json('POST', `/api/cases/${id}/opinion/sign`, undefined, token)).status).toBe(201);
  return id;
}

const deactivate = (id: string) => cm.json<{ released: unknown[] }>('PATCH', `/api/specialists/${id}`, { active: false }, admin);

describe('a signed report reopened for correction after its author was deactivated', () => {
  it('is announced once as waiting for a specialist; a case manager gives it to one', async () => {
    const author = await cm.addSpecialist(admin, 'Author', [NEURO], 'dr-reopen-author');
    const id = await signedCase(author, await svc.token('specialist', 'dr-reopen-author'));
    const signedAssignment = await currentAssignmentId(svc, id);
    // The deactivation leaves the signed case with its signer, and says nothing about it.
    expect((await deactivate(author)).body.released).toEqual([]);
    expect(await outboxEventData(svc, id, 'case.awaiting_assignment')).toEqual([]);

    // New records call for an amendment: the case manager reopens the signed report.
    await cm.move(id, 'in_review');

    const announced = {
      caseId: id,
      status: 'in_review',
      previousAssignmentId: signedAssignment,
      reason: 'specialist deactivated',
      trigger: 'report-reopened',
      slaClock: 'stopped',
    };
    expect(await outboxEventData(svc, id, 'case.awaiting_assignment')).toEqual([announced]);
    // No specialist opens it meanwhile.
    const anyone = await cm.json<Problem>('GET', `/api/cases/${id}`, undefined, await svc.token('specialist', 'dr-reopen-anyone'));
    expect(anyone.status).toBe(403);
    const notes = await eventually(
      async () => (await cm.json<{ items: { type: string; message: string }[] }>('GET', `/api/notifications?caseId=${id}`)).body.items,
      (items) => items.some((n) => n.type === 'case.awaiting_assignment'),
      30_000,
    );
    expect(notes.find((n) => n.type === 'case.awaiting_assignment')?.message).toMatch(
      new RegExp(`^The signed report was reopened for correction, but its specialist was deactivated: .* PUT /api/cases/${id}/assignment `),
    );
    // A deactivation sent again now finds the case open and releases it (no one else fits): the case
    // managers were told already about this assignment, and are not told twice.
    expect((await deactivate(author)).body.released).toMatchObject([{ caseId: id, outcome: 'awaiting_assignment', previousAssignmentId: signedAssignment }]);
    expect(await outboxEventData(svc, id, 'case.awaiting_assignment')).toEqual([announced]);

    const next = await cm.addSpecialist(admin, 'Corrector', [NEURO], 'dr-reopen-next');
    const given = await cm.json<{ specialist: { id: string } }>('PUT', `/api/cases/${id}/assignment`, { specialistId: next, reason: 'Dr. Author left the program' });
    expect([given.status, given.body.specialist.id]).toEqual([200, next]);
    expect((await cm.json('GET', `/api/cases/${id}`, undefined, await svc.token('specialist', 'dr-reopen-next'))).status).toBe(200);
  });

  it('says nothing when the author is still active: they amend it', async () => {
    const author = await cm.addSpecialist(admin, 'Active', [NEURO], 'dr-reopen-active');
    const id = await signedCase(author, await svc.token('specialist', 'dr-reopen-active'));
    await cm.move(id, 'in_review');
    expect(await outboxEventData(svc, id, 'case.awaiting_assignment')).toEqual([]);
    // Nor when the author reopens it themselves (a new draft of the signed opinion).
    const other = await signedCase(author, await svc.token('specialist', 'dr-reopen-active'));
    expect((await cm.json('PUT', `/api/cases/${other}/opinion`, sampleOpinionBody(), await svc.token('specialist', 'dr-reopen-active'))).status).toBe(200);
    expect((await cm.json<{ status: string }>('GET', `/api/cases/${other}`)).body.status).toBe('in_review');
    expect(await outboxEventData(svc, other, 'case.awaiting_assignment')).toEqual([]);
  });
});
