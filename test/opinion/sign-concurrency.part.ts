/**
 * Writing and signing racing other changes, black-box against the real service, PostgreSQL and
 * Redis. Each race is made deterministic by holding the competing change uncommitted in a second
 * connection until the request either answered or waits for the rows it holds:
 * - a deactivation of the case's specialist (`PATCH /api/specialists/:id {active: false}` commits
 *   the flag first) while the report is signed, the draft saved, or more information asked for:
 *   refused (409), nothing recorded under the deactivated specialist's name, and the release that
 *   follows finds the case still open;
 * - a save of the draft from another tab within the same millisecond while the report is signed:
 *   refused (409), not marked signed with the text before it.
 */
import { CASE_WAITS_FOR_SPECIALIST } from '../../src/http/case-access';
import { sampleOpinionBody, startReviewService, type Problem, type ReviewClient } from '../support/review-case';
import { whileRowsHeld } from '../support/held-rows';
import type { TestService } from '../support/service';

const NEURO = '2084N0402X';

let svc: TestService;
let cm: ReviewClient;
let admin: string;

beforeAll(async () => {
  ({ svc, cm, admin } = await startReviewService('sign-race'));
});
afterAll(async () => {
  await svc.stop();
});

interface OpinionView {
  draft: { content: { summary: string }; revision: number; signed: boolean } | null;
  current: { version: number; content: { summary: string } } | null;
}
interface RequestView {
  id: string;
}

const opinion = async (id: string) => (await cm.json<OpinionView>('GET', `/api/cases/${id}/opinion`)).body;
const status = async (id: string) => (await cm.json<{ status: string }>('GET', `/api/cases/${id}`)).body.status;

let seq = 0;

/** A paid case, records complete, assigned to a new specialist bound to a token; with `draft`, its opinion saved (in_review). */
async function caseOfNewSpecialist(draft: boolean): Promise<{ id: string; specialistId: string; token: string }> {
  seq += 1;
  const sub = `dr-sign-race-${seq}`;
  const specialistId = await cm.addSpecialist(admin, `Race${seq}`, [NEURO], sub);
  const token = await svc.token('specialist', sub);
  const id = await cm.openCase();
  await cm.recordsComplete(id);
  await cm.pay(id, 85000);
  expect((await cm.json('POST', `/api/cases/${id}/assignment`, { specialistId })).status).toBe(201);
  if (draft) expect((await cm.json('PUT', `/api/cases/${id}/opinion`, sampleOpinionBody(), token)).status).toBe(200);
  return { id, specialistId, token };
}

/** {@link whileRowsHeld} on the service's database. */
const whileHeld = <T>(statements: [string, unknown[]][], pattern: string, send: () => Promise<T>): Promise<T> => whileRowsHeld(svc.service.db, statements, pattern, send);

/** The deactivation's first step, as `PATCH {active: false}` commits it before releasing the cases. */
const DEACTIVATE: string = 'UPDATE specialists SET active = false WHERE id = $1';
/** A statement locking the specialist's row `FOR SHARE` (signing, saving, asking). */
const SPECIALIST_SHARE_LOCK = '%specialists%FOR SHARE%';

describe('a deactivation racing the specialist', () => {
  it('refuses (409) to sign a report whose specialist is deactivated while it renders; the release then finds the case open', async () => {
    const { id, specialistId, token } = await caseOfNewSpecialist(true);

    const signed = await whileHeld([[DEACTIVATE, [specialistId]]], SPECIALIST_SHARE_LOCK, () => cm.json<Problem>('POST', `/api/cases/${id}/opinion/sign`, undefined, token));

    expect(signed.status).toBe(409);
    expect(signed.body.field).toBe('specialist');
    expect(signed.body.detail).toContain('Dr. Test Race');
    expect(signed.body.detail).toContain(CASE_WAITS_FOR_SPECIALIST);
    expect((await opinion(id)).current).toBeNull();
    expect((await opinion(id)).draft?.signed).toBe(false);
    expect(await status(id)).toBe('in_review');
    // The deactivation goes on to release the specialist's open cases: this one is among them.
    const released = await cm.json<{ released: { caseId: string; status: string }[] }>('PATCH', `/api/specialists/${specialistId}`, { active: false }, admin);
    expect(released.status).toBe(200);
    expect(released.body.released.filter((r) => r.caseId === id)).toEqual([expect.objectContaining({ caseId: id, status: 'in_review' })]);
  });

  it('refuses (409) to save the draft for a specialist deactivated meanwhile', async () => {
    const { id, specialistId, token } = await caseOfNewSpecialist(false);

    const saved = await whileHeld([[DEACTIVATE, [specialistId]]], SPECIALIST_SHARE_LOCK, () => cm.json<Problem>('PUT', `/api/cases/${id}/opinion`, sampleOpinionBody(), token));

    expect(saved.status).toBe(409);
    expect(saved.body.field).toBe('specialist');
    expect((await opinion(id)).draft).toBeNull();
    expect(await status(id)).toBe('assigned');
  });

  it('refuses (409) an information request of a specialist deactivated meanwhile; the SLA keeps running', async () => {
    const { id, specialistId, token } = await caseOfNewSpecialist(false);

    const asked = await whileHeld([[DEACTIVATE, [specialistId]]], SPECIALIST_SHARE_LOCK, () =>
      cm.json<Problem>('POST', `/api/cases/${id}/information-requests`, { kind: 'family-upload', message: 'Please upload the EEG report.' }, token),
    );

    expect(asked.status).toBe(409);
    expect(asked.body.detail).toBe(CASE_WAITS_FOR_SPECIALIST);
    expect((await cm.json<{ items: RequestView[] }>('GET', `/api/cases/${id}/information-requests`)).body.items).toEqual([]);
    expect(await cm.json<{ status: string; sla: { paused: boolean } }>('GET', `/api/cases/${id}`)).toMatchObject({ body: { status: 'assigned', sla: { paused: false } } });
  });
});

describe('a save racing the signature', () => {
  it('refuses (409) to sign when the draft was saved again while signing, even within the same millisecond; the next signature holds the new text', async () => {
    const { id, token } = await caseOfNewSpecialist(true);
    const before = await opinion(id);

    // Another tab's save, as `saveOpinionDraft` writes it (case row locked, revision bumped), at the
    // very `updated_at` of the draft the signature read: only the revision tells the two apart.
    const signed = await whileHeld(
      [
        ['SELECT id FROM cases WHERE id = $1 FOR NO KEY UPDATE', [id]],
        [`UPDATE opinion_drafts SET content = jsonb_set(content, '{summary}', '"Saved in another tab."'), revision = revision + 1 WHERE case_id = $1`, [id]],
      ],
      '%FROM cases%FOR NO KEY UPDATE%',
      () => cm.json<Problem>('POST', `/api/cases/${id}/opinion/sign`, undefined, token),
    );

    expect(signed.status).toBe(409);
    expect(signed.body.detail).toMatch(/changed while signing/);
    const after = await opinion(id);
    expect(after.current).toBeNull();
    expect(after.draft).toMatchObject({ signed: false, revision: (before.draft?.revision ?? 0) + 1, content: { summary: 'Saved in another tab.' } });
    const again = await cm.json<OpinionView>('POST', `/api/cases/${id}/opinion/sign`, undefined, token);
    expect(again.status).toBe(201);
    expect(again.body.current).toMatchObject({ version: 1, content: { summary: 'Saved in another tab.' } });
  });
});
