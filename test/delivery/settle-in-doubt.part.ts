import type { DocumentReference, Patient } from 'fhir/r4';
import type { Intake } from '../../src/cases/intake-schema';
import { REPORT_IDENTIFIER_SYSTEM } from '../../src/delivery/report-resources';
import type { SandboxServer } from '../../src/sandbox';
import { startForFile } from '../support/for-file';
import { referredIntake, searchSandbox } from '../support/opinion-case';
import { eventually, type TestService } from '../support/service';
import { childLookAlike, otherReports, startReferringEhrWorld, type DeliveryView, type ReferringEhrWorld } from '../support/referring-ehr-world';

/**
 * A report in doubt (its write sent, its answer lost) at a recipient that cannot be looked through
 * (it ignores `identifier`, and the child's chart holds more reports than a look-up reads, so `subject`
 * does not narrow it enough) held every later version in needs_review for good: retrying ran the same
 * look-up. The case manager checks the chart and settles it (POST …/deliveries/:id/settle): `found`
 * with the report's id there (read there and checked first) → the later version is queued again and
 * amends it, replacing it; `absent` → the later version is filed `final`.
 *
 * Real service, PostgreSQL, Redis and a sandbox referring EHR with fault injection.
 */
let svc: TestService;
let ehr: SandboxServer;
let cm: string;
let specialist: string;

const CHILD = referredIntake().patient;


interface Problem { status: number; errors?: { path?: (string | number)[]; field?: string }[] }

const childRecord = (id: string, family: string): Patient => childLookAlike(id, { family, given: ['Settle'] });


let world: ReferringEhrWorld;
startForFile(() => startReferringEhrWorld('settle-doubt'), (w) => {
  world = w;
  ({ svc, ehr, cm, specialist } = w);
});

const until = (caseId: string, version: number, states: string[]): Promise<DeliveryView> => world.until(caseId, version, states, 90_000);

async function caseFor(record: Patient): Promise<{ caseId: string; intake: Intake }> {
  await ehr.load([record, ...otherReports(record.id as string, 1010)]);
  const intake = referredIntake({ patient: { ...CHILD, name: { family: record.name?.[0]?.family ?? '', given: ['Settle'] } } });
  const { caseId } = await world.caseWithRecipient(intake);
  return { caseId, intake };
}

/** Version 1 signed, its write sent and its answer lost (`written`: the EHR handled it), every later look-up failing: `failed`, in doubt. */
async function signedInDoubt(caseId: string, intake: Intake, written: boolean): Promise<DeliveryView> {
  const cut = ehr.faults.add({ match: 'POST *', action: written ? { kind: 'truncated', fraction: 0 } : { kind: 'reset' } });
  const lookups = ehr.faults.add({ match: 'GET /DiagnosticReport*', action: { kind: 'server-error' }, from: 2 });
  try {
    await world.sign(caseId, intake);
    const d = await until(caseId, 1, ['failed', 'delivered', 'needs_review']);
    expect(d).toMatchObject({ state: 'failed', remoteIds: {}, inDoubt: true });
    return d;
  } finally {
    ehr.faults.remove(cut);
    ehr.faults.remove(lookups);
  }
}

/** Version 2 signed at the recipient ignoring the identifier: needs_review, and retried, needs_review again. */
async function heldInReview(caseId: string, intake: Intake): Promise<DeliveryView> {
  await world.sign(caseId, intake, 'Amended: endocrinology review in 6 weeks.');
  const v2 = await until(caseId, 2, ['delivered', 'failed', 'needs_review']);
  expect(v2.state).toBe('needs_review');
  expect(v2.reviewReason).toMatch(/Version 1 of the report may already be in the chart.*could not be confirmed.*settle/);
  expect(v2.reviewCode).toBe('earlier-in-doubt');
  // Retrying runs the same look-up: back in review, nothing written.
  expect((await svc.request('POST', `/api/cases/${caseId}/deliveries/${v2.id}/retry`, { token: cm })).status).toBe(202);
  const again = await eventually(() => world.deliveries(caseId), (d) => d.some((x) => x.version === 2 && x.state === 'needs_review' && x.attempts > v2.attempts), 90_000);
  expect(again.find((x) => x.version === 2)?.state).toBe('needs_review');
  return v2;
}

const settle = (caseId: string, deliveryId: string, body: unknown, token = cm) =>
  svc.request('POST', `/api/cases/${caseId}/deliveries/${deliveryId}/settle`, { token, body });

const fieldsOf = async (res: Response): Promise<string[]> =>
  ((await res.json()) as Problem).errors?.map((e) => e.field ?? (e.path ?? []).join('.')) ?? [];

async function settledEvents(caseId: string): Promise<{ actor_sub: string; reason: string; data: Record<string, unknown> }[]> {
  const { rows } = await svc.service.db.query<{ actor_sub: string; reason: string; data: Record<string, unknown> }>(
    `SELECT actor_sub, reason, data FROM case_events WHERE case_id = $1 AND type = 'delivery_in_doubt_settled' ORDER BY at`,
    [caseId],
  );
  return rows;
}

it("settles a report in doubt found in the chart: the correction held in review is queued again and amends it, replacing it", async () => {
  const record = childRecord('settle-found', 'Settlefound');
  const { caseId, intake } = await caseFor(record);
  const v1 = await signedInDoubt(caseId, intake, true);
  const [report1] = await world.reportsOf(caseId, 1);
  expect(report1?.id).toBeDefined();

  let note1: string | undefined;
  const lenient = ehr.faults.add({ match: 'GET /DiagnosticReport*', action: { kind: 'ignore-parameter', name: 'identifier' } });
  try {
    const v2 = await heldInReview(caseId, intake);

    // What does not apply is refused, naming the field.
    expect((await settle(caseId, v1.id, {})).status).toBe(400);
    const both = await settle(caseId, v1.id, { found: report1?.id, absent: true });
    expect(both.status).toBe(400);
    expect(await fieldsOf(both)).toContain('found');
    expect((await settle(caseId, v1.id, { absent: false })).status).toBe(400);
    expect((await settle(caseId, '00000000-0000-4000-8000-000000000000', { absent: true })).status).toBe(404);
    expect((await settle(caseId, v1.id, { absent: true }, specialist)).status).toBe(403);
    const notInDoubt = await settle(caseId, v2.id, { absent: true });
    expect(notInDoubt.status).toBe(409);
    expect(await fieldsOf(notInDoubt)).toContain('absent');
    const another = await settle(caseId, v1.id, { found: `${record.id as string}-other-3` });
    expect(another.status).toBe(422);
    expect(await fieldsOf(another)).toContain('found');
    const missing = await settle(caseId, v1.id, { found: 'no-such-report' });
    expect(missing.status).toBe(422);
    expect(await fieldsOf(missing)).toContain('found');
    expect(await settledEvents(caseId)).toHaveLength(0);

    const settled = await settle(caseId, v1.id, { found: report1?.id });
    expect(settled.status).toBe(200);
    const body = (await settled.json()) as DeliveryView;
    expect(body).toMatchObject({ id: v1.id, inDoubt: false, requeued: [v2.id] });
    expect(body.remoteIds.DiagnosticReport).toBe(report1?.id);
    // Its note there found too: the amendment's note replaces it.
    expect(body.remoteIds.DocumentReference).toBeDefined();
    note1 = body.remoteIds.DocumentReference;
    // Settled once: a second time there is nothing in doubt.
    expect((await settle(caseId, v1.id, { absent: true })).status).toBe(409);

    expect((await until(caseId, 2, ['delivered', 'failed'])).state).toBe('delivered');
  } finally {
    ehr.faults.remove(lenient);
  }
  expect(await world.reportsOf(caseId, 1)).toHaveLength(1);
  const [report2, ...more] = await world.reportsOf(caseId, 2);
  expect(more).toHaveLength(0);
  expect(report2?.status).toBe('amended');
  expect(JSON.stringify(report2?.extension ?? [])).toContain(`DiagnosticReport/${report1?.id ?? '?'}`);
  const [note2] = await searchSandbox<DocumentReference>(ehr, 'none', 'DocumentReference', { identifier: `${REPORT_IDENTIFIER_SYSTEM}|${caseId}-v2` });
  expect(note2?.relatesTo).toEqual([expect.objectContaining({ code: 'replaces', target: { reference: `DocumentReference/${note1 ?? '?'}` } })]);
  const [event, ...others] = await settledEvents(caseId);
  expect(others).toHaveLength(0);
  expect(event).toMatchObject({ actor_sub: 'cm-settle-doubt', data: { deliveryId: v1.id, version: 1, settled: 'found', settledBy: 'cm-settle-doubt' } });
  expect(event?.reason).toContain(`DiagnosticReport/${report1?.id ?? '?'}`);
}, 300_000);

it('settles a report in doubt that is not in the chart: the correction held in review is queued again and filed final', async () => {
  const record = childRecord('settle-absent', 'Settleabsent');
  const { caseId, intake } = await caseFor(record);
  const v1 = await signedInDoubt(caseId, intake, false);
  expect(await world.reportsOf(caseId, 1)).toHaveLength(0);

  const lenient = ehr.faults.add({ match: 'GET /DiagnosticReport*', action: { kind: 'ignore-parameter', name: 'identifier' } });
  try {
    const v2 = await heldInReview(caseId, intake);
    const settled = await settle(caseId, v1.id, { absent: true });
    expect(settled.status).toBe(200);
    expect((await settled.json()) as DeliveryView).toMatchObject({ id: v1.id, inDoubt: false, remoteIds: {}, requeued: [v2.id] });
    expect((await until(caseId, 2, ['delivered', 'failed'])).state).toBe('delivered');
  } finally {
    ehr.faults.remove(lenient);
  }
  expect(await world.reportsOf(caseId, 1)).toHaveLength(0);
  const [report2] = await world.reportsOf(caseId, 2);
  expect(report2?.status).toBe('final');
  expect(report2?.subject?.reference).toBe(`Patient/${record.id as string}`);
  expect(await settledEvents(caseId)).toEqual([expect.objectContaining({ actor_sub: 'cm-settle-doubt', data: expect.objectContaining({ settled: 'absent', version: 1 }) })]);
}, 300_000);
