/**
 * `Idempotency-Key` on `POST /api/cases/:id/information-requests` is scoped to (case, caller `sub`,
 * key): one caller's resend answers their first request again; two callers who happen to pick the
 * same key each get their own request.
 */
import { startForFile } from '../support/for-file';
import { startReviewService, type InformationRequestView, type ReviewClient } from '../support/review-case';
import type { TestService } from '../support/service';

const NEURO = '2084N0402X';

let svc: TestService;
let cm: ReviewClient;
let admin: string;
startForFile(() => startReviewService('idem'), (s) => ({ svc, cm, admin } = s));

/** A paid case, records complete, assigned to a specialist the directory binds to no subject (any unbound specialist acts for them). */
async function caseOfUnboundSpecialist(): Promise<string> {
  return cm.assignedCase(await cm.addSpecialist(admin, 'Unbound', [NEURO]));
}

async function ask(caseId: string, token: string, key: string): Promise<{ status: number; replayed: boolean; body: InformationRequestView }> {
  const res = await svc.request('POST', `/api/cases/${caseId}/information-requests`, {
    token,
    body: { kind: 'family-upload', message: 'Please upload the EEG report.' },
    headers: { 'idempotency-key': key },
  });
  return { status: res.status, replayed: res.headers.get('idempotent-replayed') === 'true', body: (await res.json()) as InformationRequestView };
}

describe('Idempotency-Key of information requests', () => {
  it('creates one request per caller for the same key on the same case, and replays each caller their own', async () => {
    const id = await caseOfUnboundSpecialist();
    const specialist = await svc.token('specialist', 'dr-idem-a');
    const staffSpecialist = await svc.token(['specialist', 'case_manager'], 'cm-idem-b');

    const first = await ask(id, specialist, 'same-key');
    const second = await ask(id, staffSpecialist, 'same-key');

    expect([first.status, first.replayed, first.body.requestedBy]).toEqual([201, false, 'dr-idem-a']);
    expect([second.status, second.replayed, second.body.requestedBy]).toEqual([201, false, 'cm-idem-b']);
    expect(second.body.id).not.toBe(first.body.id);
    const resent = await ask(id, specialist, 'same-key');
    expect([resent.status, resent.replayed, resent.body.id]).toEqual([201, true, first.body.id]);
    const listed = await cm.json<{ items: InformationRequestView[] }>('GET', `/api/cases/${id}/information-requests`);
    expect(listed.body.items.map((r) => r.id).sort()).toEqual([first.body.id, second.body.id].sort());
  });

  it('keeps the same key apart on two cases of one caller', async () => {
    const [a, b] = [await caseOfUnboundSpecialist(), await caseOfUnboundSpecialist()];
    const token = await svc.token('specialist', 'dr-idem-c');
    const onA = await ask(a, token, 'k-1');
    const onB = await ask(b, token, 'k-1');
    expect([onA.status, onB.status, onB.replayed]).toEqual([201, 201, false]);
    expect(onB.body.id).not.toBe(onA.body.id);
  });
});
