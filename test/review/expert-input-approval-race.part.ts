/**
 * An expert-input request racing the family's approval of its add-on: the request reads the case
 * (not approved yet), then waits for the case row, which the approval holds; once the approval is
 * committed the request must be refused (409), not recorded: nothing would ever answer it, and the
 * SLA clock would stay paused. And an approval recorded again answers an expert-input request that
 * is still open for the approved add-on.
 */
import { startForFile } from '../support/for-file';
import { sessionWaitsFor } from '../support/held-rows';
import { startReviewService, type InformationRequestView, type ReviewClient, type Problem } from '../support/review-case';
import { eventually, type TestService } from '../support/service';

const NEURO = '2084N0402X';
const ADD_ON = 'radiology-review';

let svc: TestService;
let cm: ReviewClient;
let admin: string;
startForFile(() => startReviewService('expert-race'), (s) => ({ svc, cm, admin } = s));

let seq = 0;

/** A case assigned to a specialist bound to a token, with the radiology review offered to the family. */
async function caseWithOffer(): Promise<{ id: string; token: string }> {
  seq += 1;
  const sub = `dr-expert-race-${seq}`;
  const specialist = await cm.addSpecialist(admin, `Race${seq}`, [NEURO], sub);
  const id = await cm.assignedCase(specialist);
  expect((await cm.json('POST', `/api/cases/${id}/offers`, { addOn: ADD_ON })).status).toBe(200);
  return { id, token: await svc.token('specialist', sub) };
}

/** Whether a session of this database waits for a row lock taken `FOR NO KEY UPDATE` (the case row). */
const waitingForCaseRow = (): Promise<boolean> => sessionWaitsFor(svc.service.db, '%FOR NO KEY UPDATE%');

describe('expert-input request racing the approval of its add-on', () => {
  it('is refused with 409 when the approval is committed while the request waits for the case row; the SLA keeps running', async () => {
    const { id, token } = await caseWithOffer();
    const { pending } = await svc.service.db.transaction(async (tx) => {
      // The family's approval, as `decideAddOn` writes it, holding the case row until this transaction commits.
      await tx.query('SELECT id FROM cases WHERE id = $1 FOR NO KEY UPDATE', [id]);
      await tx.query('UPDATE cases SET addons_approved = array_append(addons_approved, $2) WHERE id = $1', [id, ADD_ON]);
      await tx.query(
        "INSERT INTO case_events (case_id, type, actor_sub, actor_role, data) VALUES ($1, 'addon_approved', 'cm-expert-race', 'case_manager', $2)",
        [id, JSON.stringify({ addOn: ADD_ON, channel: 'phone' })],
      );
      let settled = false;
      const request = cm.json<Problem & InformationRequestView>('POST', `/api/cases/${id}/information-requests`, { kind: 'expert-input', addOn: ADD_ON }, token).finally(() => {
        settled = true;
      });
      // The request read the case (not approved yet: this change is not committed) and now waits for its row.
      await eventually(async () => settled || (await waitingForCaseRow()), (done) => done, 10_000);
      expect(settled).toBe(false);
      // Wrapped: the transaction commits now, not once the request answers (it waits for this one).
      return { pending: request };
    });
    const res = await pending;
    expect(res.status).toBe(409);
    expect(res.body.field).toBe('addOn');
    expect(await cm.informationRequests(id)).toEqual([]);
    expect(await cm.caseDetail(id)).toMatchObject({ status: 'assigned', sla: { paused: false } });
  });

  it('an approval recorded again answers an expert-input request still open for the approved add-on, and the review resumes', async () => {
    const { id, token } = await caseWithOffer();
    const asked = await cm.json<InformationRequestView>('POST', `/api/cases/${id}/information-requests`, { kind: 'expert-input', addOn: ADD_ON }, token);
    expect(asked.status).toBe(201);
    // What the race above left before the fix: the add-on approved, its request still open, the clock paused.
    await svc.service.db.query('UPDATE cases SET addons_approved = array_append(addons_approved, $2) WHERE id = $1', [id, ADD_ON]);
    expect(await cm.caseDetail(id)).toMatchObject({ status: 'awaiting_information', sla: { paused: true } });

    const again = await cm.json<{ status: string; changed: boolean }>('POST', `/api/cases/${id}/approvals`, { addOn: ADD_ON, channel: 'phone' });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ status: 'approved', changed: false });
    expect((await cm.informationRequests(id)).map((r) => [r.id, r.state])).toEqual([[asked.body.id, 'answered']]);
    expect(await cm.caseDetail(id)).toMatchObject({ status: 'in_review', sla: { paused: false } });
  });
});
