import { sampleIntake } from '../support/intake';
import { randomNpi, ReviewClient, type Problem } from '../support/review-case';
import { eventually, startTestService, type TestService } from '../support/service';

const NEURO = '2084N0402X';
const ENDO = '2080P0205X';
const CARDIO = '2080P0202X';
const RHEUM = '2080P0216X';
const ICD10CM = 'http://hl7.org/fhir/sid/icd-10-cm';

let svc: TestService;
let cm: ReviewClient;
let admin: string;
let specialist: string;

beforeAll(async () => {
  svc = await startTestService();
  cm = new ReviewClient(svc, await svc.token('case_manager', 'cm-review'));
  admin = await svc.token('admin', 'admin-1');
  specialist = await svc.token('specialist', 'dr-heart');
});
afterAll(async () => {
  await svc.stop();
});

interface CaseDetail {
  status: string;
  sla: { paused: boolean; targetDue: string } | null;
  assignment: { specialistId: string; method: string } | null;
  timeline: { type: string; from?: string; to?: string; data?: Record<string, unknown> }[];
}

const detail = async (id: string) => (await cm.json<CaseDetail>('GET', `/api/cases/${id}`)).body;

describe('specialist directory', () => {
  it('adds a Practitioner with NPI and specialties, refuses a bad NPI, an unknown specialty and a duplicate', async () => {
    const npi = randomNpi();
    const body = { npi, name: { family: 'Okafor', given: ['Ngozi'], prefix: ['Dr.'], suffix: ['MD'] }, specialties: [RHEUM] };
    const created = await cm.json<{ id: string; practitioner: { identifier: { system: string; value: string }[] }; practitionerRole: { specialty: { coding: { code: string }[] }[] }; openCases: number }>(
      'POST', '/api/specialists', body, admin,
    );
    expect(created.status).toBe(201);
    expect(created.body.practitioner.identifier).toEqual([{ system: 'http://hl7.org/fhir/sid/us-npi', value: npi }]);
    expect(created.body.practitionerRole.specialty[0]?.coding[0]?.code).toBe(RHEUM);
    expect(created.body.openCases).toBe(0);

    const badNpi = await cm.json<Problem>('POST', '/api/specialists', { ...body, npi: `${npi.slice(0, 9)}${(Number(npi[9]) + 1) % 10}` }, admin);
    expect(badNpi.status).toBe(400);
    expect(badNpi.body.errors?.[0]?.field).toBe('npi');
    const unknown = await cm.json<Problem>('POST', '/api/specialists', { ...body, npi: randomNpi(), specialties: [RHEUM, '207Q00000X'] }, admin);
    expect(unknown.status).toBe(400);
    expect(unknown.body.errors?.[0]?.field).toBe('specialties.1');
    const duplicate = await cm.json<Problem>('POST', '/api/specialists', body, admin);
    expect(duplicate.status).toBe(409);
    expect(duplicate.body.field).toBe('npi');

    const patched = await cm.json<{ active: boolean }>('PATCH', `/api/specialists/${created.body.id}`, { active: false }, admin);
    expect(patched.body.active).toBe(false);
    const listed = await cm.json<{ items: { id: string }[] }>('GET', `/api/specialists?active=false&specialty=${RHEUM}`);
    expect(listed.body.items.map((s) => s.id)).toEqual([created.body.id]);
  });
});

describe('POST /api/cases/:id/assignment', () => {
  it('answers 409 naming both missing things: records not complete and no payment', async () => {
    const id = await cm.openCase();
    await cm.move(id, 'collecting_records');
    const res = await cm.json<Problem & { missing: { requirement: string; detail: string }[] }>('POST', `/api/cases/${id}/assignment`, { match: true });
    expect(res.status).toBe(409);
    expect(res.body.missing.map((m) => m.requirement)).toEqual(['records_complete', 'payment']);
    expect(res.body.detail).toMatch(/collecting_records/);
    expect(res.body.detail).toMatch(/\$850\.00/);

    await cm.assemble(id);
    await cm.move(id, 'records_complete');
    await cm.pay(id, 60000);
    const partial = await cm.json<Problem & { missing: { requirement: string; detail: string }[] }>('POST', `/api/cases/${id}/assignment`, { match: true });
    expect(partial.body.missing.map((m) => m.requirement)).toEqual(['payment']);
    expect(partial.body.detail).toMatch(/\$600\.00 of \$850\.00 recorded, \$250\.00 still due/);
    expect((await detail(id)).status).toBe('records_complete');
  });

  it('best match: the specialty of the diagnosis first, then the specialist with the fewest open cases', async () => {
    const busy = await cm.addSpecialist(admin, 'Busy', [NEURO]);
    const free = await cm.addSpecialist(admin, 'Free', [NEURO]);
    const endocrinologist = await cm.addSpecialist(admin, 'Gland', [ENDO]);

    const first = await cm.readyCase();
    const named = await cm.json<{ specialist: { id: string }; method: string }>('POST', `/api/cases/${first}/assignment`, { specialistId: busy });
    expect(named.status).toBe(201);
    expect(named.body).toMatchObject({ method: 'named', specialist: { id: busy } });

    // Epilepsy: neurology, where Free has 0 open cases and Busy 1; the endocrinologist (0) is not a fit.
    const second = await cm.readyCase();
    const matched = await cm.json<{ specialist: { id: string; openCases: number }; method: string; matchedSpecialty: string }>('POST', `/api/cases/${second}/assignment`, { match: true });
    expect(matched.status).toBe(201);
    expect(matched.body).toMatchObject({ method: 'matched', matchedSpecialty: NEURO, specialist: { id: free, openCases: 1 } });

    const diabetes = sampleIntake({ diagnosis: { text: 'Type 1 diabetes', codes: [{ system: ICD10CM, code: 'E10.9' }] } });
    const third = await cm.readyCase(diabetes);
    const endo = await cm.json<{ specialist: { id: string } }>('POST', `/api/cases/${third}/assignment`, { match: true });
    expect(endo.body.specialist.id).toBe(endocrinologist);

    const state = await detail(second);
    expect(state.status).toBe('assigned');
    expect(state.assignment).toMatchObject({ specialistId: free, method: 'matched' });
    expect(state.timeline.at(-1)).toMatchObject({ type: 'transition', from: 'records_complete', to: 'assigned', data: { specialistId: free } });
    const again = await cm.json<Problem>('POST', `/api/cases/${second}/assignment`, { specialistId: busy });
    expect(again.status).toBe(409);
  });

  it('never assigns the second opinion to the physician who asked for it: excluded from the match, refused when named', async () => {
    const referringNpi = randomNpi();
    const referrer = await cm.json<{ id: string }>('POST', '/api/specialists', { npi: referringNpi, name: { family: 'Referrer', given: ['Test'], prefix: ['Dr.'] }, specialties: [RHEUM] }, admin);
    expect(referrer.status).toBe(201);
    const other = await cm.addSpecialist(admin, 'Colleague', [RHEUM]);
    const base = sampleIntake({ diagnosis: { text: 'Juvenile arthritis', codes: [{ system: ICD10CM, code: 'M08.00' }] } });
    const intake = { ...base, referringPhysician: { ...base.referringPhysician, npi: referringNpi } };
    const named = await cm.json<Problem>('POST', `/api/cases/${await cm.readyCase(intake)}/assignment`, { specialistId: referrer.body.id });
    expect(named.status).toBe(409);
    expect(named.body.detail).toContain('is the referring physician of this case');
    // Best match: the referrer (added first, no open cases) would win the tie; the colleague is chosen.
    const matched = await cm.json<{ specialist: { id: string } }>('POST', `/api/cases/${await cm.readyCase(intake)}/assignment`, { match: true });
    expect(matched.status).toBe(201);
    expect(matched.body.specialist.id).toBe(other);
  });

  it('names the body problem: neither or both of specialistId and match', async () => {
    const id = await cm.readyCase();
    const neither = await cm.json<Problem>('POST', `/api/cases/${id}/assignment`, {});
    expect(neither.status).toBe(400);
    expect(neither.body.errors?.[0]?.field).toBe('specialistId');
  });
});

describe('information requests', () => {
  it('a family-upload request pauses the SLA clock until the case manager answers it', async () => {
    const heart = await cm.addSpecialist(admin, 'Heart', [CARDIO], 'dr-heart');
    const id = await cm.assignedCase(heart);
    const before = await detail(id);
    expect(before.sla?.paused).toBe(false);

    const asked = await cm.json<{ id: string; state: string }>('POST', `/api/cases/${id}/information-requests`, { kind: 'family-upload', message: 'Please upload the 2025 echo report.' }, specialist);
    expect(asked.status).toBe(201);
    expect(asked.body.state).toBe('open');
    const paused = await detail(id);
    expect(paused.status).toBe('awaiting_information');
    expect(paused.sla?.paused).toBe(true);
    expect(paused.timeline.slice(-3).map((e) => [e.type, e.to])).toEqual([
      ['information_requested', undefined],
      ['transition', 'in_review'],
      ['transition', 'awaiting_information'],
    ]);
    const pauses = await svc.service.db.query<{ ended_at: Date | null }>('SELECT ended_at FROM sla_pauses WHERE case_id = $1', [id]);
    expect(pauses.rows).toEqual([{ ended_at: null }]);
    // The review does not resume by hand while the request is open (the SLA stays paused).
    const early = await cm.json<{ openRequests: string[] }>('POST', `/api/cases/${id}/transitions`, { to: 'in_review', reason: 'resume' });
    expect(early.status).toBe(409);
    expect(early.body.openRequests).toEqual([asked.body.id]);

    const answered = await cm.json<{ state: string; answer: string }>('POST', `/api/cases/${id}/information-requests/${asked.body.id}/answer`, { answer: 'Echo report uploaded by the family.' });
    expect(answered.status).toBe(200);
    expect(answered.body).toMatchObject({ state: 'answered', answer: 'Echo report uploaded by the family.' });
    const resumed = await detail(id);
    expect(resumed.status).toBe('in_review');
    expect(resumed.sla?.paused).toBe(false);
    expect(resumed.timeline.slice(-2).map((e) => [e.type, e.to, e.data?.slaResumed])).toEqual([
      ['information_request_answered', undefined, undefined],
      ['transition', 'in_review', true],
    ]);
    const closed = await svc.service.db.query<{ ended_at: Date | null }>('SELECT ended_at FROM sla_pauses WHERE case_id = $1', [id]);
    expect(closed.rows[0]?.ended_at).toBeInstanceOf(Date);
    const twice = await cm.json<Problem>('POST', `/api/cases/${id}/information-requests/${asked.body.id}/answer`, { answer: 'again' });
    expect(twice.status).toBe(409);
  });

  it('an expert-input request offers the add-on; the family approval answers it and adds the fee', async () => {
    const heart = (await cm.json<{ items: { id: string; userSub: string | null }[] }>('GET', `/api/specialists?specialty=${CARDIO}`)).body.items.find((s) => s.userSub === 'dr-heart')?.id ?? '';
    const id = await cm.assignedCase(heart);
    const asked = await cm.json<{ addOn: string }>('POST', `/api/cases/${id}/information-requests`, { kind: 'expert-input', addOn: 'radiology-review' }, specialist);
    expect(asked.status).toBe(201);
    expect((await detail(id)).status).toBe('awaiting_information');
    const approval = await cm.json<{ quote: { total: number } }>('POST', `/api/cases/${id}/approvals`, { addOn: 'radiology-review', channel: 'phone' });
    expect(approval.body.quote.total).toBe(1200);
    const after = await detail(id);
    expect(after.status).toBe('in_review');
    expect(after.sla?.paused).toBe(false);
    const requests = await cm.json<{ items: { state: string }[] }>('GET', `/api/cases/${id}/information-requests`);
    expect(requests.body.items.map((r) => r.state)).toEqual(['answered']);
  });

  it("records one request for a specialist's double submit with the same Idempotency-Key", async () => {
    const heart = (await cm.json<{ items: { id: string; userSub: string | null }[] }>('GET', `/api/specialists?specialty=${CARDIO}`)).body.items.find((s) => s.userSub === 'dr-heart')?.id ?? '';
    const id = await cm.assignedCase(heart);
    const ask = (message: string, key: string) =>
      svc.request('POST', `/api/cases/${id}/information-requests`, { token: specialist, body: { kind: 'family-upload', message }, headers: { 'idempotency-key': key } });
    const [a, b] = await Promise.all([ask('Please upload the MRI report.', 'ask-1'), ask('Please upload the MRI report.', 'ask-1')]);
    expect([a.status, b.status]).toEqual([201, 201]);
    const ids = await Promise.all([a, b].map(async (r) => ((await r.json()) as { id: string }).id));
    expect(ids[0]).toBe(ids[1]);
    expect([a, b].filter((r) => r.headers.get('idempotent-replayed') === 'true')).toHaveLength(1);
    const again = await ask('Please upload the MRI report.', 'ask-1');
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    const requests = await cm.json<{ items: { id: string }[] }>('GET', `/api/cases/${id}/information-requests`);
    expect(requests.body.items.map((r) => r.id)).toEqual([ids[0]]);
    const reused = await ask('Something else', 'ask-1');
    expect(reused.status).toBe(422);
    expect(((await reused.json()) as Problem).errors?.[0]?.field).toBe('Idempotency-Key');
  });

  it('a re-pull needs a source to pull from (409, nothing recorded); another specialist is refused (403)', async () => {
    const heart = (await cm.json<{ items: { id: string; userSub: string | null }[] }>('GET', `/api/specialists?specialty=${CARDIO}`)).body.items.find((s) => s.userSub === 'dr-heart')?.id ?? '';
    const id = await cm.assignedCase(heart);
    const repull = await cm.json<Problem>('POST', `/api/cases/${id}/information-requests`, { kind: 're-pull', resourceTypes: ['Observation'] }, specialist);
    expect(repull.status).toBe(409);
    expect(repull.body.detail).toMatch(/no sources/);
    expect((await detail(id)).status).toBe('assigned');
    const badType = await cm.json<Problem>('POST', `/api/cases/${id}/information-requests`, { kind: 're-pull', resourceTypes: ['Spaceship'] }, specialist);
    expect(badType.status).toBe(400);
    expect(badType.body.errors?.[0]?.field).toBe('resourceTypes.0');
    const other = await cm.json<Problem>('POST', `/api/cases/${id}/information-requests`, { kind: 'family-upload', message: 'x' }, await svc.token('specialist', 'dr-other'));
    expect(other.status).toBe(403);
  });
});

describe("the specialist's worklist", () => {
  interface Worklist {
    specialist: { id: string; displayName: string } | null;
    detail?: string;
    total: number;
    items: {
      id: string;
      status: string;
      sla: { targetDue: string } | null;
      records: { bundleVersion: number; lastOpenedVersion: number | null } | null;
      opinion: { draftSavedAt: string | null; unsignedChanges: boolean; signedVersion: number | null; signedOnBundleVersion: number | null };
      newRecordsSinceOpinion: boolean;
      newRecordsSinceLastOpened: boolean;
      links: Record<string, string>;
    }[];
  }
  const worklist = async (token: string, query = '') => (await cm.json<Worklist>('GET', `/api/worklist${query}`, undefined, token)).body;

  it("lists the cases assigned to the specialist bound to the token's subject, nearest SLA target first, with record and opinion progress", async () => {
    const mine = await svc.token('specialist', 'dr-worklist');
    const theirs = await svc.token('specialist', 'dr-other-worklist');
    const me = await cm.addSpecialist(admin, 'Worklist', [NEURO], 'dr-worklist');
    const other = await cm.addSpecialist(admin, 'Other', [NEURO], 'dr-other-worklist');
    const [early, late, elsewhere] = [await cm.readyCase(), await cm.readyCase(), await cm.readyCase()];
    for (const [id, who] of [[late, me], [early, me], [elsewhere, other]] as const) {
      expect((await cm.json('POST', `/api/cases/${id}/assignment`, { specialistId: who })).status).toBe(201);
    }
    // Make `early` the more urgent one whatever the order of assignment.
    await svc.service.db.query(`UPDATE cases SET sla_target_due = now() + interval '1 day' WHERE id = $1`, [early]);
    await svc.service.db.query(`UPDATE cases SET sla_target_due = now() + interval '4 days' WHERE id = $1`, [late]);

    const list = await worklist(mine);
    expect(list.specialist?.id).toBe(me);
    expect(list.items.map((i) => i.id)).toEqual([early, late]);
    expect(list.total).toBe(2);
    expect(list.items[0]).toMatchObject({ status: 'assigned', records: { bundleVersion: 1, lastOpenedVersion: null }, opinion: { draftSavedAt: null, unsignedChanges: false, signedVersion: null }, newRecordsSinceOpinion: false });
    expect(list.items[0]?.links).toMatchObject({ case: `/api/cases/${early}`, summary: `/api/cases/${early}/bundle/summary` });
    expect((await worklist(theirs)).items.map((i) => i.id)).toEqual([elsewhere]);
    expect((await worklist(mine, '?status=in_review')).items).toEqual([]);
    // The case managers' list, by specialist.
    const byMe = (await cm.json<{ total: number; items: { id: string }[] }>('GET', `/api/cases?specialistId=${me}`)).body;
    expect([byMe.total, byMe.items.map((i) => i.id).sort()]).toEqual([2, [early, late].sort()]);
    expect((await cm.json<Problem>('GET', '/api/cases?specialistId=nope')).body.errors?.[0]?.field).toBe('query.specialistId');

    // Records, a signed opinion, then newer records: the worklist says so and links the changes.
    const rebuild = async (): Promise<void> => void expect((await cm.json('POST', `/api/cases/${early}/bundle/rebuild`, {})).status).toBe(201);
    await rebuild();
    // A record the specialist has not opened yet; once opened (the readable page), not new any more.
    const item = async () => (await worklist(mine)).items.find((i) => i.id === early);
    expect(await item()).toMatchObject({ records: { bundleVersion: 2, lastOpenedVersion: null }, newRecordsSinceLastOpened: true });
    await (await svc.request('GET', `/api/cases/${early}/bundle/summary`, { token: mine })).text();
    await eventually(item, (i) => i?.newRecordsSinceLastOpened === false, 10_000);
    expect(await item()).toMatchObject({ records: { bundleVersion: 2, lastOpenedVersion: 2 } });
    const intake = sampleIntake();
    const answers = intake.questions.map((question) => ({ question, answer: 'Answered.' }));
    const opinion = { summary: 'S.', diagnosisAssessment: 'A.', recommendations: 'R.', answers, followUp: 'F.' };
    expect((await cm.json('PUT', `/api/cases/${early}/opinion`, opinion, mine)).status).toBe(200);
    expect((await worklist(mine)).items.find((i) => i.id === early)?.opinion).toMatchObject({ unsignedChanges: true, signedVersion: null });
    expect((await cm.json('POST', `/api/cases/${early}/opinion/sign`, undefined, mine)).status).toBe(201);
    await rebuild();
    const after = (await worklist(mine)).items.find((i) => i.id === early);
    expect(after).toMatchObject({
      status: 'report_signed', records: { bundleVersion: 3, lastOpenedVersion: 2 }, newRecordsSinceLastOpened: true,
      opinion: { unsignedChanges: false, signedVersion: 1, signedOnBundleVersion: 2 }, newRecordsSinceOpinion: true,
    });
    expect(after?.links.changes).toBe(`/api/cases/${early}/bundle/changes?from=2&to=3`);
    expect(after?.links.summarySinceLastOpened).toBe(`/api/cases/${early}/bundle/summary?since=2`);
  });

  it('says when no specialist is bound to the subject, and refuses other roles', async () => {
    const unbound = await worklist(await svc.token('specialist', 'dr-nobody'));
    expect(unbound).toMatchObject({ specialist: null, total: 0, items: [] });
    expect(unbound.detail).toContain('userSub');
    expect((await cm.json('GET', '/api/worklist')).status).toBe(403);
    const bad = await cm.json<Problem>('GET', '/api/worklist?limit=0', undefined, await svc.token('specialist', 'dr-nobody'));
    expect(bad.status).toBe(400);
    expect(bad.body.detail).toContain('limit must be 1 to 200');
    // Decimal digits only: Number() would read 0x10 as 16 and 1e2 as 100.
    for (const value of ['0x10', '1e2', '-1', '']) {
      const odd = await cm.json<Problem>('GET', `/api/worklist?limit=${value}&offset=0`, undefined, await svc.token('specialist', 'dr-nobody'));
      expect({ value, status: odd.status }).toEqual({ value, status: 400 });
      expect(odd.body.detail).toMatch(/^query\.limit: limit must be/);
    }
    const offset = await cm.json<Problem>('GET', '/api/worklist?offset=1e3', undefined, await svc.token('specialist', 'dr-nobody'));
    expect(offset.body.detail).toBe('query.offset: offset must be a whole number (decimal digits only)');
  });
});
