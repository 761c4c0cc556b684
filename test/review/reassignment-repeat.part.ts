/**
 * A "best match" reassignment sent twice (a double submit, a retry, a second case manager) must not
 * hand the case back to the specialist it was taken from: the best match leaves out everyone the
 * case was reassigned away from, and `fromAssignmentId` lets the request say which assignment it
 * replaces (409 when the case has another one by now).
 */
import { startForFile } from '../support/for-file';
import { startReviewService, type ReviewClient, type Problem } from '../support/review-case';
import type { TestService } from '../support/service';

const NEURO = '2084N0402X';

let svc: TestService;
let cm: ReviewClient;
let admin: string;
startForFile(() => startReviewService('reassign-repeat'), (s) => ({ svc, cm, admin } = s));

interface AssignmentView {
  id: string;
  method: string;
  specialist: { id: string };
}

const CONFLICT = 'Conflict of interest: knows the family';
let seq = 0;

/**
 * Dr A (bound to a token subject) holding a paid, records-complete case, Dr B and any `extra`
 * specialists: the only active ones of the directory (everyone added before is made inactive).
 */
async function caseWithDrA(extra = 0): Promise<{ id: string; a: string; b: string; others: string[]; aToken: string; aAssignment: string }> {
  seq += 1;
  await svc.service.db.query('UPDATE specialists SET active = false');
  const a = await cm.addSpecialist(admin, `A${seq}`, [NEURO], `dr-repeat-a${seq}`);
  const b = await cm.addSpecialist(admin, `B${seq}`, [NEURO]);
  const others: string[] = [];
  for (let i = 0; i < extra; i += 1) others.push(await cm.addSpecialist(admin, `C${seq}x${i}`, [NEURO]));
  const id = await cm.readyCase();
  const assigned = await cm.json<AssignmentView>('POST', `/api/cases/${id}/assignment`, { specialistId: a });
  expect(assigned.status).toBe(201);
  return { id, a, b, others, aToken: await svc.token('specialist', `dr-repeat-a${seq}`), aAssignment: assigned.body.id };
}

const reassign = (id: string, body: Record<string, unknown>) => cm.json<AssignmentView & Problem>('PUT', `/api/cases/${id}/assignment`, body);

/** The case stays with `b`: one `reassigned` event (from `a`), and Dr A's token no longer opens it. */
async function expectStaysWithB(id: string, a: string, b: string, aToken: string): Promise<void> {
  expect((await cm.json<AssignmentView>('GET', `/api/cases/${id}/assignment`)).body.specialist.id).toBe(b);
  const { rows } = await svc.service.db.query<{ from: string; to: string }>(
    "SELECT data->>'previousSpecialistId' AS from, data->>'specialistId' AS to FROM case_events WHERE case_id = $1 AND type = 'reassigned' ORDER BY id",
    [id],
  );
  expect(rows).toEqual([{ from: a, to: b }]);
  expect((await svc.request('GET', `/api/cases/${id}`, { token: aToken })).status).toBe(403);
}

describe('PUT /api/cases/:id/assignment {match: true} sent twice', () => {
  it('one after the other: the second does not give the case back to the specialist it was taken from', async () => {
    const { id, a, b, aToken } = await caseWithDrA();
    const first = await reassign(id, { match: true, reason: CONFLICT });
    expect([first.status, first.body.specialist?.id]).toEqual([200, b]);
    const second = await reassign(id, { match: true, reason: CONFLICT });
    expect(second.status).toBe(409);
    expect(second.body.detail).toMatch(/other than the one assigned now and those the case was reassigned away from/);
    expect(second.body.reassignedAwayFrom).toEqual([a]);
    await expectStaysWithB(id, a, b, aToken);
    // Named explicitly, a case manager may still give it back.
    expect((await reassign(id, { specialistId: a, reason: 'The conflict was a misunderstanding' })).status).toBe(200);
  });

  it('at the same time: one reassignment, and the case stays with the new specialist', async () => {
    const { id, a, b, aToken } = await caseWithDrA();
    const answers = await Promise.all([reassign(id, { match: true, reason: CONFLICT }), reassign(id, { match: true, reason: CONFLICT })]);
    expect(answers.map((r) => r.status).sort()).toEqual([200, 409]);
    expect(answers.find((r) => r.status === 200)?.body.specialist.id).toBe(b);
    await expectStaysWithB(id, a, b, aToken);
  });

  it('with fromAssignmentId, at the same time: the second is refused (409) even when another specialist would fit', async () => {
    const { id, a, b, aToken, aAssignment } = await caseWithDrA(1);
    const body = { match: true, reason: CONFLICT, fromAssignmentId: aAssignment };
    const answers = await Promise.all([reassign(id, body), reassign(id, body)]);
    expect(answers.map((r) => r.status).sort()).toEqual([200, 409]);
    const won = answers.find((r) => r.status === 200);
    const lost = answers.find((r) => r.status === 409);
    expect(won?.body.specialist.id).toBe(b);
    expect(lost?.body).toMatchObject({ field: 'fromAssignmentId', currentAssignmentId: won?.body.id, currentSpecialistId: b });
    await expectStaysWithB(id, a, b, aToken);
  });

  it('refuses a stale or unknown fromAssignmentId with 409, and takes the current one', async () => {
    const { id, a, b, aToken, aAssignment, others } = await caseWithDrA(1);
    const toB = await reassign(id, { specialistId: b, reason: CONFLICT, fromAssignmentId: aAssignment });
    expect(toB.status).toBe(200);
    const stale = await reassign(id, { specialistId: others[0], reason: 'Dr. B is away', fromAssignmentId: aAssignment });
    expect(stale.status).toBe(409);
    expect(stale.body).toMatchObject({ field: 'fromAssignmentId', currentAssignmentId: toB.body.id });
    expect((await reassign(id, { match: true, reason: 'Dr. B is away', fromAssignmentId: '00000000-0000-4000-8000-000000000000' })).status).toBe(409);
    await expectStaysWithB(id, a, b, aToken);
    const bad = await reassign(id, { match: true, reason: 'x', fromAssignmentId: 'not-an-id' });
    expect([bad.status, bad.body.errors?.map((e) => e.field)]).toEqual([400, ['fromAssignmentId']]);
    // The id as a client may print it: UUIDs compare in any case.
    const current = await reassign(id, { match: true, reason: 'Dr. B is away', fromAssignmentId: String(toB.body.id).toUpperCase() });
    expect([current.status, current.body.specialist?.id]).toEqual([200, others[0]]);
  });
});
