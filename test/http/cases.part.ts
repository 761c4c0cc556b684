import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { sweepSla } from '../../queues/sla-sweep';
import { transitionCase, type CaseServiceDeps } from '../../src/cases/case-service';
import { loadDomainData } from '../../src/cases/domain-data';
import { startCaseManagerService } from '../support/case-manager';
import { startForFile } from '../support/for-file';
import { sampleIntake } from '../support/intake';
import { eventually, type TestService } from '../support/service';

let svc: TestService;
let cm: string;

startForFile(() => startCaseManagerService({}, 'cm-1'), (s) => ({ svc, cm } = s));

interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  errors?: { field: string; pointer: string; detail: string }[];
}

async function openCase(body: unknown = sampleIntake()): Promise<{ id: string; status: string }> {
  const res = await svc.request('POST', '/api/cases', { token: cm, body });
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string; status: string };
}

async function move(id: string, to: string, reason?: string): Promise<Response> {
  return svc.request('POST', `/api/cases/${id}/transitions`, { token: cm, body: { to, reason } });
}

async function rebuild(id: string): Promise<void> {
  expect((await svc.request('POST', `/api/cases/${id}/bundle/rebuild`, { token: cm, body: {} })).status).toBe(201);
}

/** submitted → collecting_records → (record assembled) → records_complete, each move answered 200. */
async function recordsComplete(id: string): Promise<void> {
  expect((await move(id, 'collecting_records')).status).toBe(200);
  await rebuild(id);
  expect((await move(id, 'records_complete')).status).toBe(200);
}

describe('POST /api/cases (intake)', () => {
  it('opens an eligible case: 201 with id, status, eligibility and the $850 quote', async () => {
    const res = await svc.request('POST', '/api/cases', { token: cm, body: sampleIntake() });
    expect(res.status).toBe(201);
    const body = (await res.json()) as { id: string; status: string; eligibility: unknown; quote: { base: number; total: number; currency: string } };
    expect(body).toMatchObject({ status: 'submitted', eligibility: { eligible: true, reasons: [] } });
    expect(body.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(body.quote).toMatchObject({ currency: 'USD', base: 850, total: 850 });
    expect(res.headers.get('location')).toBe(`/api/cases/${body.id}`);
  });

  it('records an ineligible request with every reason as a sentence (urgent first)', async () => {
    const intake = sampleIntake({ urgent: true });
    const res = await svc.request('POST', '/api/cases', {
      token: cm,
      body: { ...intake, requester: { ...intake.requester, relationship: 'GRPRN' } },
    });
    expect(res.status).toBe(201);
    const body = (await res.json()) as { id: string; status: string; eligibility: { eligible: boolean; reasons: string[] } };
    expect(body.status).toBe('ineligible');
    expect(body.eligibility.eligible).toBe(false);
    expect(body.eligibility.reasons[0]).toMatch(/911/);
    expect(body.eligibility.reasons.length).toBeGreaterThanOrEqual(2);
    for (const reason of body.eligibility.reasons) expect(reason).toMatch(/^[A-Z].*\.$/);
    const detail = (await (await svc.request('GET', `/api/cases/${body.id}`, { token: cm })).json()) as { timeline: { type: string; to?: string }[] };
    expect(detail.timeline.map((e) => [e.type, e.to])).toEqual([
      ['created', 'submitted'],
      ['transition', 'ineligible'],
    ]);
  });

  it('records the version of the eligibility rules that decided, with the decision', async () => {
    const res = await svc.request('POST', '/api/cases', { token: cm, body: sampleIntake() });
    const { id, eligibility } = (await res.json()) as { id: string; eligibility: { rulesVersion?: string } };
    const { version } = loadDomainData().eligibility;
    expect(version).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(eligibility.rulesVersion).toBe(version);
    const detail = (await (await svc.request('GET', `/api/cases/${id}`, { token: cm })).json()) as { eligibility: { rulesVersion?: string } };
    expect(detail.eligibility.rulesVersion).toBe(version);
  });

  it('answers what GET /openapi.json declares for its 201 (eligible, ineligible, with possible duplicates, replayed)', async () => {
    const doc = (await (await svc.request('GET', '/openapi.json')).json()) as {
      paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema?: object }> }> }>>;
    };
    const declared = doc.paths['/api/cases']?.post?.responses['201']?.content?.['application/json']?.schema;
    expect(declared).toBeDefined();
    const schema = z.fromJSONSchema(declared as Parameters<typeof z.fromJSONSchema>[0]);
    const intake = sampleIntake();
    intake.patient.name = { given: ['Openapi'], family: `Answer${Date.now()}` };
    const ineligible = sampleIntake({ urgent: true });
    const key = { 'idempotency-key': `openapi-${Date.now()}` };
    const answers: [string, Response][] = [
      ['eligible', await svc.request('POST', '/api/cases', { token: cm, body: intake })],
      ['possible duplicate', await svc.request('POST', '/api/cases', { token: cm, body: intake })],
      ['ineligible', await svc.request('POST', '/api/cases', { token: cm, body: ineligible })],
      ['keyed', await svc.request('POST', '/api/cases', { token: cm, body: { ...intake, unknownMember: 1 }, headers: key })],
      ['replayed', await svc.request('POST', '/api/cases', { token: cm, body: { ...intake, unknownMember: 1 }, headers: key })],
    ];
    for (const [label, res] of answers) {
      expect({ label, status: res.status }).toEqual({ label, status: 201 });
      const body: unknown = await res.json();
      const checked = schema.safeParse(body);
      expect({ label, issues: checked.success ? [] : checked.error.issues }).toEqual({ label, issues: [] });
    }
    // The schema is strict (additionalProperties: false), so the check has teeth: a member it does not declare fails it.
    const sample = (await (await svc.request('POST', '/api/cases', { token: cm, body: sampleIntake() })).json()) as { eligibility: object };
    expect(schema.safeParse({ ...sample, eligibility: { ...sample.eligibility, undeclared: true } }).success).toBe(false);
  });

  it('answers problem+json naming each bad field', async () => {
    const intake = sampleIntake();
    const { birthDate: _b, ...patientWithoutBirthDate } = intake.patient;
    const res = await svc.request('POST', '/api/cases', {
      token: cm,
      body: { ...intake, patient: patientWithoutBirthDate, questions: [], urgent: 'no' },
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const problem = (await res.json()) as Problem;
    const fields = problem.errors?.map((e) => e.field) ?? [];
    expect(fields).toEqual(expect.arrayContaining(['patient.birthDate', 'questions', 'urgent']));
    expect(problem.errors?.find((e) => e.field === 'patient.birthDate')?.pointer).toBe('#/patient/birthDate');
    expect(problem.detail).toContain('patient.birthDate');
    expect(problem.status).toBe(400);
  });

  it('names the open cases that may be about the same child (same names and birth date) when a case is opened', async () => {
    const intake = sampleIntake();
    intake.patient.name = { given: ['Twinnie', 'Ann'], family: `Dupcheck${Date.now()}` };
    const first = (await (await svc.request('POST', '/api/cases', { token: cm, body: intake })).json()) as { id: string; possibleDuplicates: unknown[] };
    expect(first.possibleDuplicates).toEqual([]);
    const again = { ...intake, patient: { ...intake.patient, name: { given: ['TWINNIE'], family: intake.patient.name.family.toLowerCase() } } };
    const second = (await (await svc.request('POST', '/api/cases', { token: cm, body: again })).json()) as { id: string; possibleDuplicates: { id: string; status: string; createdAt: string }[] };
    expect(second.possibleDuplicates).toEqual([{ id: first.id, status: 'submitted', createdAt: expect.stringMatching(/^\d{4}-/) as unknown as string }]);
    // Another birth date is another child; a cancelled case is no longer open.
    const sibling = { ...intake, patient: { ...intake.patient, birthDate: '2015-01-02' } };
    expect(((await (await svc.request('POST', '/api/cases', { token: cm, body: sibling })).json()) as { possibleDuplicates: unknown[] }).possibleDuplicates).toEqual([]);
    expect((await move(first.id, 'cancelled', 'entered twice')).status).toBe(200);
    const third = (await (await svc.request('POST', '/api/cases', { token: cm, body: intake })).json()) as { possibleDuplicates: { id: string }[] };
    expect(third.possibleDuplicates.map((d) => d.id)).toEqual([second.id]);
  });

  it('opens one case for an intake sent again with the same Idempotency-Key (a portal retrying after a timeout)', async () => {
    const key = { 'idempotency-key': `intake-${Date.now()}` };
    const first = await svc.request('POST', '/api/cases', { token: cm, body: sampleIntake(), headers: key });
    expect(first.status).toBe(201);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    const opened = (await first.json()) as { id: string; status: string };
    // The case moves on meanwhile; the resend still answers what the first request answered.
    expect((await move(opened.id, 'collecting_records')).status).toBe(200);
    const again = await svc.request('POST', '/api/cases', { token: cm, body: sampleIntake(), headers: key });
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.headers.get('location')).toBe(`/api/cases/${opened.id}`);
    const replayedBody = (await again.json()) as typeof opened & Record<string, unknown>;
    expect({ id: replayedBody.id, status: replayedBody.status }).toEqual({ id: opened.id, status: opened.status });
    // Sent at once, twice: still one case.
    const both = { 'idempotency-key': `intake-both-${Date.now()}` };
    const [a, b] = await Promise.all([0, 1].map(() => svc.request('POST', '/api/cases', { token: cm, body: sampleIntake(), headers: both })));
    const ids = await Promise.all([a, b].map(async (r) => ((await (r as Response).json()) as { id: string }).id));
    expect(ids[0]).toBe(ids[1]);
    // Another intake under a used key: 422 naming the header. Another caller's same key: its own case. A bad key: 400.
    const other = sampleIntake();
    other.reason = `${other.reason} (another child)`;
    const reused = await svc.request('POST', '/api/cases', { token: cm, body: other, headers: key });
    expect(reused.status).toBe(422);
    expect(((await reused.json()) as Problem).errors?.[0]?.field).toBe('Idempotency-Key');
    const elsewhere = await svc.request('POST', '/api/cases', { token: await svc.token('case_manager', 'cm-2'), body: sampleIntake(), headers: key });
    expect(elsewhere.status).toBe(201);
    expect(((await elsewhere.json()) as { id: string }).id).not.toBe(opened.id);
    const bad = await svc.request('POST', '/api/cases', { token: cm, body: sampleIntake(), headers: { 'idempotency-key': 'has space' } });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as Problem).errors?.[0]?.field).toBe('Idempotency-Key');
  });

  it('answers 400 for malformed JSON, 415 for a non-JSON body and 413 over the size limit', async () => {
    const malformed = await svc.request('POST', '/api/cases', { token: cm, body: '{"patient":' });
    expect(malformed.status).toBe(400);
    expect(((await malformed.json()) as Problem).title).toBe('Malformed JSON');
    const text = await svc.request('POST', '/api/cases', { token: cm, body: 'hello', headers: { 'content-type': 'text/plain' } });
    expect(text.status).toBe(415);
    const huge = await svc.request('POST', '/api/cases', { token: cm, body: { ...sampleIntake(), history: 'x'.repeat(2 * 1024 * 1024) } });
    expect(huge.status).toBe(413);
    expect(huge.headers.get('content-type')).toMatch(/problem\+json/);
  });

  it('answers 404 problem+json for unknown routes and unknown cases, without stack traces', async () => {
    const unknownRoute = await svc.request('GET', '/api/nothing-here', { token: cm });
    expect(unknownRoute.status).toBe(404);
    const unknownCase = await svc.request('GET', '/api/cases/00000000-0000-4000-8000-000000000000', { token: cm });
    expect(unknownCase.status).toBe(404);
    const text = await unknownCase.text();
    expect(text).not.toMatch(/at .*\.ts:\d+/);
    expect(JSON.parse(text)).toMatchObject({ status: 404, title: 'Not Found' });
    const badId = await svc.request('GET', '/api/cases/not-a-uuid', { token: cm });
    expect(badId.status).toBe(400);
    expect(((await badId.json()) as Problem).errors?.[0]?.field).toBe('params.id');
  });
});

describe('GET /api/cases/:id and the lifecycle', () => {
  it('walks the happy path, one timeline event per transition with who and why; workflow-only statuses are refused here', async () => {
    const { id } = await openCase();
    // assigned, report_signed and delivered have their own routes (assignment, signature,
    // delivery) that check preconditions; the lifecycle walk sets them as those routes would.
    const setByWorkflow = async (to: string): Promise<void> => {
      const refused = await move(id, to, `moving to ${to}`);
      expect({ to, status: refused.status }).toEqual({ to, status: 409 });
      expect(((await refused.json()) as Problem).detail).toMatch(new RegExp(`becomes ${to} only through`));
      await svc.service.db.query('UPDATE cases SET status = $2, revision = revision + 1 WHERE id = $1', [id, to]);
    };
    const steps: [string, 'route' | 'workflow'][] = [
      ['collecting_records', 'route'],
      ['records_complete', 'route'],
      ['assigned', 'workflow'],
      ['in_review', 'route'],
      ['awaiting_information', 'route'],
      ['in_review', 'route'],
      ['report_signed', 'workflow'],
      ['delivered', 'workflow'],
      ['closed', 'route'],
    ];
    for (const [to, how] of steps) {
      if (how === 'workflow') {
        await setByWorkflow(to);
        continue;
      }
      if (to === 'records_complete') await rebuild(id);
      const res = await move(id, to, `moving to ${to}`);
      expect({ to, status: res.status }).toEqual({ to, status: 200 });
    }
    const detail = (await (await svc.request('GET', `/api/cases/${id}`, { token: cm })).json()) as {
      status: string;
      intake: unknown;
      allowedTransitions: string[];
      timeline: { type: string; actor: string; from?: string; to?: string; reason?: string; at: string }[];
    };
    expect(detail.status).toBe('closed');
    expect(detail.intake).toEqual(sampleIntake());
    expect(detail.allowedTransitions).toEqual([]);
    const transitions = detail.timeline.filter((e) => e.type === 'transition');
    expect(transitions.map((e) => e.to)).toEqual(steps.filter(([, how]) => how === 'route').map(([to]) => to));
    expect(transitions.every((e) => e.actor === 'cm-1' && e.reason === `moving to ${e.to}`)).toBe(true);
  });

  it('answers 409 for an illegal transition, naming the allowed ones', async () => {
    const { id } = await openCase();
    const res = await move(id, 'in_review');
    expect(res.status).toBe(409);
    const problem = (await res.json()) as Problem & { allowedTransitions: string[]; currentStatus: string };
    expect(problem.currentStatus).toBe('submitted');
    expect(problem.allowedTransitions).toEqual(expect.arrayContaining(['collecting_records', 'cancelled']));
    for (const allowed of problem.allowedTransitions) expect(problem.detail).toContain(allowed);
  });

  it('lists as allowedTransitions only what /transitions takes; the workflow-only moves apart (workflowTransitions, {to, route})', async () => {
    type Moves = { status: string; allowedTransitions: string[]; workflowTransitions: { to: string; route: string; detail: string }[] };
    const { id } = await openCase();
    await recordsComplete(id);
    const detail = (await (await svc.request('GET', `/api/cases/${id}`, { token: cm })).json()) as Moves;
    expect(detail.status).toBe('records_complete');
    expect(detail.allowedTransitions).toEqual(['collecting_records', 'cancelled']);
    expect(detail.workflowTransitions).toEqual([{ to: 'assigned', route: 'POST /api/cases/:id/assignment', detail: expect.any(String) }]);
    // The 409 of an illegal move says the same.
    const illegal = await move(id, 'in_review');
    expect(illegal.status).toBe(409);
    const problem = (await illegal.json()) as Problem & Moves & { currentStatus: string };
    expect(problem).toMatchObject({ currentStatus: 'records_complete', allowedTransitions: ['collecting_records', 'cancelled'], workflowTransitions: [{ to: 'assigned', route: 'POST /api/cases/:id/assignment' }] });
    expect(problem.detail).toMatch(/to: collecting_records, cancelled \(POST …\/transitions\)\. Through its workflow: assigned \(POST \/api\/cases\/:id\/assignment\)/);
    // The workflow-only refusal names its route, and says what is allowed instead.
    const workflow = await move(id, 'assigned');
    expect(workflow.status).toBe(409);
    expect(await workflow.json()).toMatchObject({ to: 'assigned', currentStatus: 'records_complete', allowedTransitions: ['collecting_records', 'cancelled'], detail: expect.stringMatching(/becomes assigned only through POST \/api\/cases\/:id\/assignment/) });

    // In every status: no workflow-only status among allowedTransitions, and each of those /transitions does not refuse as workflow-only.
    const workflowOnly = ['assigned', 'report_signed', 'delivered'];
    for (const status of ['submitted', 'collecting_records', 'records_complete', 'assigned', 'in_review', 'awaiting_information', 'report_signed', 'delivered', 'closed']) {
      const { id: other } = await openCase();
      await svc.service.db.query('UPDATE cases SET status = $2, revision = revision + 1 WHERE id = $1', [other, status]);
      const moves = (await (await svc.request('GET', `/api/cases/${other}`, { token: cm })).json()) as Moves;
      expect({ status, listed: moves.allowedTransitions.filter((to) => workflowOnly.includes(to)) }).toEqual({ status, listed: [] });
      for (const w of moves.workflowTransitions) expect(workflowOnly).toContain(w.to);
    }
  });

  it('answers 404 for a case that does not exist, whatever the move asked (a workflow-only status too)', async () => {
    for (const to of ['assigned', 'report_signed', 'delivered', 'collecting_records', 'in_review']) {
      const res = await move(randomUUID(), to);
      expect({ to, status: res.status }).toEqual({ to, status: 404 });
      expect(((await res.json()) as Problem).detail).toMatch(/^Case .* was not found\.$/);
    }
  });

  it('starts the SLA clock when records are complete, pauses it while awaiting information', async () => {
    const { id } = await openCase();
    await recordsComplete(id);
    let detail = (await (await svc.request('GET', `/api/cases/${id}`, { token: cm })).json()) as {
      sla: { targetDue: string; limitDue: string; paused: boolean } | null;
    };
    expect(detail.sla).not.toBeNull();
    expect(new Date(detail.sla?.limitDue ?? 0).getTime()).toBeGreaterThan(new Date(detail.sla?.targetDue ?? 0).getTime());
    await svc.service.db.query(`UPDATE cases SET status = 'assigned' WHERE id = $1`, [id]);
    await move(id, 'in_review');
    await move(id, 'awaiting_information', 'Need the MRI report');
    detail = (await (await svc.request('GET', `/api/cases/${id}`, { token: cm })).json()) as typeof detail;
    expect(detail.sla?.paused).toBe(true);
  });
});

describe('a manual move to records_complete needs the record it promises', () => {
  type Refusal = Problem & { requirement: string; pullId?: string; bundleVersion?: number };
  const refusal = async (id: string): Promise<Refusal> => {
    const res = await move(id, 'records_complete');
    expect(res.status).toBe(409);
    return (await res.json()) as Refusal;
  };
  const addPull = async (caseId: string, state: string, finishedAt: Date | null): Promise<string> => {
    const pullId = randomUUID();
    await svc.service.db.query('INSERT INTO pulls (id, case_id, state, requested_by, finished_at) VALUES ($1, $2, $3, $4, $5)', [pullId, caseId, state, 'cm-test', finishedAt]);
    return pullId;
  };
  const statusOf = async (id: string): Promise<{ status: string; records_complete_at: Date | null }> =>
    (await svc.service.db.query<{ status: string; records_complete_at: Date | null }>('SELECT status, records_complete_at FROM cases WHERE id = $1', [id])).rows[0] ?? { status: '', records_complete_at: null };

  it('refuses without an assembled bundle (409 says to rebuild), and the SLA clock does not start', async () => {
    const { id } = await openCase();
    expect((await move(id, 'collecting_records')).status).toBe(200);
    const problem = await refusal(id);
    expect(problem).toMatchObject({ requirement: 'bundle' });
    expect(problem.detail).toContain(`/api/cases/${id}/bundle/rebuild`);
    expect(await statusOf(id)).toEqual({ status: 'collecting_records', records_complete_at: null });
  });

  it('refuses while a pull of the case is queued or running, naming it', async () => {
    const { id } = await openCase();
    expect((await move(id, 'collecting_records')).status).toBe(200);
    await rebuild(id);
    const pullId = await addPull(id, 'running', null);
    expect(await refusal(id)).toMatchObject({ requirement: 'no_pull_under_way', pullId });
    await svc.service.db.query("UPDATE pulls SET state = 'partial', finished_at = now() WHERE id = $1", [pullId]);
    // Finished after the bundle was assembled: that bundle lacks what the pull brought.
    expect(await refusal(id)).toMatchObject({ requirement: 'current_bundle', pullId, bundleVersion: 1 });
    await rebuild(id);
    expect((await move(id, 'records_complete', 'Going on without the source that failed')).status).toBe(200);
    expect((await statusOf(id)).status).toBe('records_complete');
  });

  it("accepts a bundle assembled by the last pull's own parent job", async () => {
    const { id } = await openCase();
    expect((await move(id, 'collecting_records')).status).toBe(200);
    await rebuild(id);
    const pullId = await addPull(id, 'failed', new Date(Date.now() + 60_000));
    expect(await refusal(id)).toMatchObject({ requirement: 'current_bundle' });
    await svc.service.db.query("UPDATE case_bundles SET trigger = $2 WHERE case_id = $1", [id, `pull:${pullId}:1`]);
    expect((await move(id, 'records_complete')).status).toBe(200);
  });
});

describe('the SLA clock stops when the case leaves its statuses', () => {
  it('judges a stopped case at the stop, and gives it no due dates to be found overdue by', async () => {
    const { id } = await openCase();
    await recordsComplete(id);
    type Detail = { sla: { overdue: string; businessDaysUsed: number; stoppedAt?: string } | null };
    expect(((await (await svc.request('GET', `/api/cases/${id}`, { token: cm })).json()) as Detail).sla?.stoppedAt).toBeUndefined();
    expect((await move(id, 'cancelled', 'The family withdrew.')).status).toBe(200);
    const { rows } = await svc.service.db.query<{ stopped: Date | null; target: Date | null }>('SELECT sla_stopped_at AS stopped, sla_target_due AS target FROM cases WHERE id = $1', [id]);
    expect(rows[0]?.stopped).toBeInstanceOf(Date);
    expect(rows[0]?.target).toBeNull();
    // A month later (records complete 30 days ago, stopped the day after): judged at the stop, on time.
    await svc.service.db.query(
      "UPDATE cases SET records_complete_at = now() - interval '30 days', sla_stopped_at = now() - interval '29 days' WHERE id = $1",
      [id],
    );
    const detail = (await (await svc.request('GET', `/api/cases/${id}`, { token: cm })).json()) as Detail;
    expect(detail.sla).toMatchObject({ overdue: 'none' });
    expect(detail.sla?.businessDaysUsed).toBeLessThanOrEqual(1);
    expect(detail.sla?.stoppedAt).toEqual(expect.any(String));
  });
});

describe('a correction after signing does not run the SLA clock again', () => {
  it('keeps the stop of the first signature through report_signed → in_review → report_signed: a report signed on time stays on time, and the sweep finds nothing', async () => {
    const { id } = await openCase();
    await recordsComplete(id);
    await svc.service.db.query(`UPDATE cases SET status = 'assigned' WHERE id = $1`, [id]);
    await move(id, 'in_review');
    // Signing moves the case as the opinion service does (transitionCase), the day after records were complete.
    const deps: CaseServiceDeps = { db: svc.service.db, config: svc.service.config, domain: loadDomainData() };
    const signer = { sub: 'dr-sla', roles: ['specialist'] } as const;
    const sign = (at: Date): Promise<void> => svc.service.db.transaction((tx) => transitionCase(deps, tx, { id, to: 'report_signed', reason: undefined, actor: signer, now: at }));
    await svc.service.db.query("UPDATE cases SET records_complete_at = now() - interval '10 days' WHERE id = $1", [id]);
    const firstSignature = new Date(Date.now() - 9 * 86_400_000);
    await sign(firstSignature);
    // Ten days later the specialist corrects the report before it is delivered, then signs again.
    expect((await move(id, 'in_review', 'Correcting the dose')).status).toBe(200);
    const during = await svc.service.db.query<{ stopped: Date | null; target: Date | null; limit: Date | null }>(
      'SELECT sla_stopped_at AS stopped, sla_target_due AS target, sla_limit_due AS limit FROM cases WHERE id = $1', [id]);
    expect(during.rows[0]).toEqual({ stopped: firstSignature, target: null, limit: null });
    expect(await sweepSla(svc.service.db, new Date(), svc.service.config.programTimeZone)).toEqual({ targetMissed: 0, limitMissed: 0 });
    type Detail = { sla: { overdue: string; stoppedAt?: string } | null; timeline: { type: string }[] };
    let detail = (await (await svc.request('GET', `/api/cases/${id}`, { token: cm })).json()) as Detail;
    expect(detail.sla).toMatchObject({ overdue: 'none', stoppedAt: firstSignature.toISOString() });
    await sign(new Date());
    detail = (await (await svc.request('GET', `/api/cases/${id}`, { token: cm })).json()) as Detail;
    expect(detail.sla).toMatchObject({ overdue: 'none', stoppedAt: firstSignature.toISOString() });
    expect(detail.timeline.filter((e) => e.type.startsWith('sla_'))).toEqual([]);
  });
});

describe('a miss the sweep has not reached yet', () => {
  it('is recorded and announced when the clock stops: a report signed past its target between two sweeps', async () => {
    const { id } = await openCase();
    await recordsComplete(id);
    await svc.service.db.query(`UPDATE cases SET status = 'assigned' WHERE id = $1`, [id]);
    await move(id, 'in_review');
    // The target passed an hour ago; the sweep has not run since.
    const { rows: dues } = await svc.service.db.query<{ due: Date }>("UPDATE cases SET sla_target_due = date_trunc('milliseconds', now() - interval '1 hour') WHERE id = $1 RETURNING sla_target_due AS due", [id]);
    const deps: CaseServiceDeps = { db: svc.service.db, config: svc.service.config, domain: loadDomainData() };
    await svc.service.db.transaction((tx) => transitionCase(deps, tx, { id, to: 'report_signed', reason: undefined, actor: { sub: 'dr-late', roles: ['specialist'] }, now: new Date() }));
    const { rows } = await svc.service.db.query<{ type: string }>(`SELECT type FROM outbox WHERE case_id = $1 AND type LIKE 'sla.%'`, [id]);
    expect(rows.map((r) => r.type)).toEqual(['sla.target_missed']);
    const detail = (await (await svc.request('GET', `/api/cases/${id}`, { token: cm })).json()) as { timeline: { type: string; at: string }[] };
    expect(detail.timeline.filter((e) => e.type.startsWith('sla_')).map((e) => e.type)).toEqual(['sla_target_missed']);
    // Dated when it became overdue (the millisecond after its due instant), not when the signing noticed.
    expect(detail.timeline.find((e) => e.type === 'sla_target_missed')?.at).toBe(new Date((dues[0]?.due.getTime() ?? 0) + 1).toISOString());
    // The clock stopped (due dates gone): the next sweep has nothing more to say about it.
    expect(await svc.service.db.query('SELECT 1 FROM cases WHERE id = $1 AND sla_target_due IS NULL', [id])).toMatchObject({ rowCount: 1 });
  });
});

describe('GET /api/cases filters', () => {
  it('filters by status and by overdue, and the SLA sweep records each miss once', async () => {
    const onTime = await openCase();
    const late = await openCase();
    for (const id of [onTime.id, late.id]) {
      await recordsComplete(id);
    }
    // Let time pass for the late case: its target and limit dates are in the past.
    await svc.service.db.query(
      "UPDATE cases SET sla_target_due = now() - interval '2 days', sla_limit_due = now() - interval '1 hour' WHERE id = $1",
      [late.id],
    );
    const list = async (query: string) =>
      ((await (await svc.request('GET', `/api/cases?${query}`, { token: cm })).json()) as { items: { id: string }[]; total: number }).items.map(
        (c) => c.id,
      );
    expect(await list('overdue=true')).toEqual([late.id]);
    expect(await list('overdue=limit')).toEqual([late.id]);
    const notOverdue = await list('overdue=false&status=records_complete');
    expect(notOverdue).toContain(onTime.id);
    expect(notOverdue).not.toContain(late.id);
    expect(await list('status=records_complete')).toEqual(expect.arrayContaining([onTime.id, late.id]));
    const badFilter = await svc.request('GET', '/api/cases?status=lost', { token: cm });
    expect(badFilter.status).toBe(400);

    expect(await sweepSla(svc.service.db, new Date(), svc.service.config.programTimeZone)).toEqual({ targetMissed: 1, limitMissed: 1 });
    expect(await sweepSla(svc.service.db, new Date(), svc.service.config.programTimeZone)).toEqual({ targetMissed: 0, limitMissed: 0 });
    const detail = (await (await svc.request('GET', `/api/cases/${late.id}`, { token: cm })).json()) as { timeline: { type: string }[] };
    expect(detail.timeline.filter((e) => e.type.startsWith('sla_'))).toHaveLength(2);
    // Announced once each, to case managers and webhook subscribers (the outbox), with the due date.
    const { rows } = await svc.service.db.query<{ type: string; due: string }>(
      `SELECT type, data->>'dueAt' AS due FROM outbox WHERE case_id = $1 AND type LIKE 'sla.%' ORDER BY type`,
      [late.id],
    );
    expect(rows.map((r) => r.type)).toEqual(['sla.limit_missed', 'sla.target_missed']);
    expect(rows.every((r) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(r.due))).toBe(true);
    const notes = await eventually(
      async () => ((await (await svc.request('GET', `/api/notifications?caseId=${late.id}`, { token: cm })).json()) as { items: { type: string; message: string }[] }).items,
      (items) => items.filter((n) => n.type.startsWith('sla.')).length === 2,
      30_000,
    );
    // The due day as the program counts it: the day the due instant falls on in its time zone.
    const limitDay = new Intl.DateTimeFormat('en-CA', { timeZone: svc.config.programTimeZone }).format(new Date(rows.find((r) => r.type === 'sla.limit_missed')?.due ?? 0));
    expect(notes.find((n) => n.type === 'sla.limit_missed')?.message).toBe(
      `The report is past its 7-business-day limit (due ${limitDay}, end of day ${svc.config.programTimeZone}): act now.`,
    );
  });
});

// After the filters' test, which expects its late case alone in the overdue list.
describe('a case paused after missing its target', () => {
  it('stays in the overdue list while it awaits information, as its detail says; one paused in time does not', async () => {
    const list = async (query: string): Promise<string[]> =>
      ((await (await svc.request('GET', `/api/cases?${query}`, { token: cm })).json()) as { items: { id: string }[] }).items.map((c) => c.id);
    const [late, inTime] = [(await openCase()).id, (await openCase()).id];
    for (const id of [late, inTime]) {
      await recordsComplete(id);
      await svc.service.db.query(`UPDATE cases SET status = 'assigned' WHERE id = $1`, [id]);
      await move(id, 'in_review');
    }
    // Records complete three weeks ago: past the 5-business-day target and the 7-day limit.
    await svc.service.db.query("UPDATE cases SET records_complete_at = now() - interval '21 days' WHERE id = $1", [late]);
    for (const id of [late, inTime]) expect((await move(id, 'awaiting_information', 'Need the MRI report')).status).toBe(200);

    const detail = (await (await svc.request('GET', `/api/cases/${late}`, { token: cm })).json()) as { sla: { overdue: string; paused: boolean } };
    expect(detail.sla).toMatchObject({ overdue: 'limit', paused: true });
    expect(await list('overdue=true')).toContain(late);
    expect(await list('overdue=limit')).toContain(late);
    expect(await list('overdue=true')).not.toContain(inTime);
    expect(await list('overdue=false&status=awaiting_information')).toEqual(expect.arrayContaining([inTime]));
    expect(await list('overdue=false&status=awaiting_information')).not.toContain(late);
  });
});

describe('GET /api/cases/:id/fhir', () => {
  it("returns the case's FHIR face: Patient, RelatedPerson, Consent and ServiceRequest", async () => {
    const { id } = await openCase();
    const res = await svc.request('GET', `/api/cases/${id}/fhir`, { token: await svc.token('ehr', 'ehr-client') });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
    const bundle = (await res.json()) as { resourceType: string; type: string; entry: { resource: { resourceType: string } }[] };
    expect(bundle.resourceType).toBe('Bundle');
    expect(bundle.entry.map((e) => e.resource.resourceType).sort()).toEqual(['Consent', 'Patient', 'RelatedPerson', 'ServiceRequest']);
  });

  it('shows the lifecycle in the FHIR face: a cancelled case has a revoked ServiceRequest and an inactive Consent', async () => {
    const { id } = await openCase();
    const statuses = async () => {
      const bundle = (await (await svc.request('GET', `/api/cases/${id}/fhir`, { token: cm })).json()) as { entry: { resource: { resourceType: string; status?: string } }[] };
      return Object.fromEntries(bundle.entry.filter((e) => e.resource.status !== undefined).map((e) => [e.resource.resourceType, e.resource.status]));
    };
    expect(await statuses()).toEqual({ Consent: 'active', ServiceRequest: 'active' });
    const consentPeriod = async () => {
      const bundle = (await (await svc.request('GET', `/api/cases/${id}/fhir`, { token: cm })).json()) as { entry: { resource: { resourceType: string; provision?: { period?: { start?: string; end?: string } } } }[] };
      return bundle.entry.find((e) => e.resource.resourceType === 'Consent')?.resource.provision?.period;
    };
    expect((await consentPeriod())?.end).toBeUndefined();
    const before = Date.now();
    expect((await svc.request('POST', `/api/cases/${id}/transitions`, { token: cm, body: { to: 'cancelled', reason: 'The family withdrew the request.' } })).status).toBe(200);
    expect(await statuses()).toEqual({ Consent: 'inactive', ServiceRequest: 'revoked' });
    // The authorization ends with the case.
    const period = await consentPeriod();
    expect(Date.parse(period?.end ?? '')).toBeGreaterThanOrEqual(before - 1000);
    expect(Date.parse(period?.end ?? '')).toBeGreaterThanOrEqual(Date.parse(period?.start ?? ''));
  });

  it('speaks FHIR JSON only: 406 with an OperationOutcome for XML, by Accept or by _format (which wins)', async () => {
    const { id } = await openCase();
    const token = await svc.token('ehr', 'ehr-client');
    const get = (query: string, accept?: string) => svc.request('GET', `/api/cases/${id}/fhir${query}`, { token, headers: accept ? { accept } : {} });
    for (const [query, accept] of [['', 'application/fhir+xml'], ['?_format=xml', undefined], ['?_format=application/fhir%2Bxml', 'application/fhir+json'], ['?_format=ttl', undefined]] as const) {
      const res = await get(query, accept);
      expect(res.status).toBe(406);
      expect(res.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
      const outcome = (await res.json()) as { resourceType: string; issue: { code: string; diagnostics: string }[] };
      expect(outcome).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ code: 'not-supported' }] });
      expect(outcome.issue[0]?.diagnostics).toContain('application/fhir+json only');
    }
    for (const [query, accept] of [['', 'application/fhir+json'], ['', 'application/json, */*;q=0.1'], ['?_format=json', 'application/fhir+xml'], ['?_format=application/fhir%2Bjson', undefined], ['', '*/*']] as const) {
      expect((await get(query, accept)).status).toBe(200);
    }
    // Media-type parameters: a charset, R4's fhirVersion, the older json+fhir type (http.html#mime-type, #version-parameter).
    for (const accept of ['application/json; charset=UTF-8', 'application/fhir+json;charset=utf-8', 'application/fhir+json; fhirVersion=4.0', 'application/fhir+json; fhirVersion="4.0.1"', 'application/json+fhir']) {
      expect({ accept, status: (await get('', accept)).status }).toEqual({ accept, status: 200 });
    }
    // Another FHIR version, or JSON excluded by q=0: nothing this route can serve.
    for (const accept of ['application/fhir+json; fhirVersion=3.0', 'application/fhir+json;q=0, application/fhir+xml']) {
      expect({ accept, status: (await get('', accept)).status }).toEqual({ accept, status: 406 });
    }
  });

  it('answers errors on the FHIR route as an OperationOutcome', async () => {
    const res = await svc.request('GET', '/api/cases/00000000-0000-4000-8000-000000000000/fhir', { token: cm });
    expect(res.status).toBe(404);
    const outcome = (await res.json()) as { resourceType: string; issue: { severity: string; code: string }[] };
    expect(outcome.resourceType).toBe('OperationOutcome');
    expect(outcome.issue[0]).toMatchObject({ severity: 'error', code: 'not-found' });
    // A bad request parameter is located as http.<name> (R4 OperationOutcome.issue.location), not as a FHIRPath expression.
    const { id } = await openCase();
    for (const [route, location] of [[`/api/cases/${id}/bundle?version=abc`, 'http.version'], ['/api/cases/not-a-case/fhir', 'http.id']] as const) {
      const bad = await svc.request('GET', route, { token: cm });
      expect(bad.status).toBe(400);
      const issue = ((await bad.json()) as { issue: { code: string; location?: string[]; expression?: string[] }[] }).issue[0];
      expect(issue).toMatchObject({ code: 'invalid', location: [location] });
      expect(issue?.expression).toBeUndefined();
    }
  });
});

describe('an endpointId that names no registered endpoint', () => {
  it('is a 404 whose errors[] names endpointId (POST …/sources and POST …/recipients)', async () => {
    const { id } = await openCase();
    const endpointId = randomUUID();
    for (const [route, body] of [
      [`/api/cases/${id}/sources`, { endpointId, patient: { match: true } }],
      [`/api/cases/${id}/recipients`, { endpointId }],
    ] as const) {
      const res = await svc.request('POST', route, { token: cm, body });
      expect({ route, status: res.status }).toEqual({ route, status: 404 });
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      const problem = (await res.json()) as Problem;
      expect(problem.title).toBe('Not Found');
      expect(problem.detail).toMatch(/^endpointId: /);
      expect(problem.detail).toContain(endpointId);
      expect(problem.errors).toEqual([{ field: 'endpointId', pointer: '#/endpointId', detail: expect.stringContaining(endpointId) }]);
    }
    // An unknown case is still the case's 404, without errors[].
    const noCase = await svc.request('POST', `/api/cases/${randomUUID()}/sources`, { token: cm, body: { endpointId, patient: { match: true } } });
    expect(noCase.status).toBe(404);
    expect(((await noCase.json()) as Problem).errors).toBeUndefined();
  });
});
