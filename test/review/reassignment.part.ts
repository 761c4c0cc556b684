import { startForFile } from '../support/for-file';
import { sampleOpinionBody, startReviewService, type ReviewClient, type Problem } from '../support/review-case';
import type { TestService } from '../support/service';

const NEURO = '2084N0402X';

let svc: TestService;
let cm: ReviewClient;
let admin: string;
startForFile(() => startReviewService('reassign'), (s) => ({ svc, cm, admin } = s));

interface AssignmentView {
  id: string;
  method: string;
  specialist: { id: string };
}

const reassign = (id: string, body: Record<string, unknown>) => cm.json<AssignmentView & Problem>('PUT', `/api/cases/${id}/assignment`, body);

describe('PUT /api/cases/:id/assignment (reassignment)', () => {
  it('hands the case to the named specialist: same status and SLA, a timeline event naming both and why, and access follows', async () => {
    const first = await cm.addSpecialist(admin, 'Away', [NEURO], 'dr-away');
    const second = await cm.addSpecialist(admin, 'Cover', [NEURO], 'dr-cover');
    const id = await cm.assignedCase(first);
    const away = await svc.token('specialist', 'dr-away');
    const cover = await svc.token('specialist', 'dr-cover');
    await cm.move(id, 'in_review');
    const before = await cm.caseDetail(id);
    expect(before.status).toBe('in_review');

    const res = await reassign(id, { specialistId: second, reason: 'Dr. Away is on leave for three weeks' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ method: 'named', specialist: { id: second } });
    expect((await cm.json<AssignmentView>('GET', `/api/cases/${id}/assignment`)).body.specialist.id).toBe(second);
    const after = await cm.caseDetail(id);
    expect(after.status).toBe(before.status);
    expect(after.sla?.targetDue).toBe(before.sla?.targetDue);
    const event = after.timeline.at(-1);
    expect(event).toMatchObject({ type: 'reassigned', data: { specialistId: second, previousSpecialistId: first, method: 'named' } });
    expect(event?.reason).toMatch(/from Dr\. Test Away to Dr\. Test Cover: Dr\. Away is on leave for three weeks/);
    // Only the specialist assigned now reads the case.
    expect((await svc.request('GET', `/api/cases/${id}`, { token: away })).status).toBe(403);
    expect((await svc.request('GET', `/api/cases/${id}`, { token: cover })).status).toBe(200);
    const worklist = async (token: string) => (await cm.json<{ items: { id: string }[] }>('GET', '/api/worklist', undefined, token)).body.items.map((i) => i.id);
    expect(await worklist(away)).not.toContain(id);
    expect(await worklist(cover)).toContain(id);
    const { rows } = await svc.service.db.query<{ current: number; ended: number }>(
      'SELECT count(*) FILTER (WHERE ended_at IS NULL)::int AS current, count(*) FILTER (WHERE ended_at IS NOT NULL)::int AS ended FROM assignments WHERE case_id = $1',
      [id],
    );
    expect(rows[0]).toEqual({ current: 1, ended: 1 });
  });

  it('asks for the best match other than the specialist assigned now, and says when there is none', async () => {
    const only = await cm.addSpecialist(admin, 'OnlyNeuro', [NEURO]);
    const id = await cm.assignedCase(only);
    // Every other neurologist of this directory is made inactive: none left but the one assigned.
    await svc.service.db.query('UPDATE specialists SET active = false WHERE id <> $1', [only]);
    const none = await reassign(id, { match: true, reason: 'Conflict of interest' });
    expect(none.status).toBe(409);
    expect(none.body.detail).toMatch(/other than the one assigned now/);
    const spare = await cm.addSpecialist(admin, 'Spare', [NEURO]);
    const matched = await reassign(id, { match: true, reason: 'Conflict of interest' });
    expect(matched.status).toBe(200);
    expect(matched.body).toMatchObject({ method: 'matched', specialist: { id: spare } });
  });

  it('refuses what cannot be a reassignment, naming the field or the reason', async () => {
    const current = await cm.addSpecialist(admin, 'Current', [NEURO]);
    const other = await cm.addSpecialist(admin, 'Other', [NEURO]);
    const id = await cm.assignedCase(current);
    const same = await reassign(id, { specialistId: current, reason: 'again' });
    expect([same.status, same.body.field]).toEqual([409, 'specialistId']);
    const noReason = await reassign(id, { specialistId: other });
    expect(noReason.status).toBe(400);
    expect(noReason.body.errors?.map((e) => e.field)).toEqual(['reason']);
    const both = await reassign(id, { specialistId: other, match: true, reason: 'x' });
    expect(both.status).toBe(400);
    expect((await reassign(id, { specialistId: '00000000-0000-4000-8000-000000000000', reason: 'x' })).status).toBe(404);

    const notAssigned = await cm.openCase();
    const early = await reassign(notAssigned, { specialistId: other, reason: 'x' });
    expect(early.status).toBe(409);
    expect(early.body.detail).toMatch(/assign it first/);

    await svc.service.db.query("UPDATE cases SET status = 'report_signed' WHERE id = $1", [id]);
    const signed = await reassign(id, { specialistId: other, reason: 'x' });
    expect(signed.status).toBe(409);
    expect(signed.body.detail).toMatch(/report is signed/);
    expect((await cm.json<AssignmentView>('GET', `/api/cases/${id}/assignment`)).body.specialist.id).toBe(current);
    // Admins may (here: refused as signed); specialists may not.
    expect((await svc.request('PUT', `/api/cases/${id}/assignment`, { token: admin, body: { specialistId: other, reason: 'x' } })).status).toBe(409);
    expect((await svc.request('PUT', `/api/cases/${id}/assignment`, { token: await svc.token('specialist', 'dr-x'), body: { specialistId: other, reason: 'x' } })).status).toBe(403);
  });

  it("keeps the previous specialist's draft, which the new one signs only once saved as their own", async () => {
    const first = await cm.addSpecialist(admin, 'Drafter', [NEURO], 'dr-drafter');
    const second = await cm.addSpecialist(admin, 'Finisher', [NEURO], 'dr-finisher');
    const id = await cm.assignedCase(first);
    const drafter = await svc.token('specialist', 'dr-drafter');
    const finisher = await svc.token('specialist', 'dr-finisher');
    const opinion = sampleOpinionBody();
    expect((await cm.json('PUT', `/api/cases/${id}/opinion`, opinion, drafter)).status).toBe(200);
    expect((await reassign(id, { specialistId: second, reason: 'Dr. Drafter left the program' })).status).toBe(200);
    expect((await cm.json('POST', `/api/cases/${id}/opinion/sign`, undefined, drafter)).status).toBe(403);
    expect((await cm.json('POST', `/api/cases/${id}/opinion/sign`, undefined, finisher)).status).toBe(403);
    expect((await cm.json('PUT', `/api/cases/${id}/opinion`, { ...opinion, summary: 'S, reviewed.' }, finisher)).status).toBe(200);
    expect((await cm.json('POST', `/api/cases/${id}/opinion/sign`, undefined, finisher)).status).toBe(201);
  });
});
