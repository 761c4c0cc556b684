import { startCareTeamAWorld, type CareTeamAWorld } from '../support/sandbox-case';
import { markSourceChanged } from '../../src/assembly/source-changes';
import type { SandboxServer } from '../../src/sandbox';
import { fixtureBundle, fixtureIntake, fixturePatientId } from '../support/fixture-child';
import { pagesStoredFor } from '../support/pull-task';
import { eventually, FAST_CLIENT, type TestService } from '../support/service';
import { JORGE, patientOf, readBundle } from '../support/synthea';
import { CASE_ROW_LOCK } from '../../src/db/case-repository';
import { importedFullUrl } from '../../src/normalize/ids';
import type { Bundle, MedicationRequest } from 'fhir/r4';

/**
 * The wrong child at a care team: the source was resolved to another patient (Jorge, a Synthea child
 * held by the same EHR), a pull brought his records into the case. The case manager chooses the
 * right child: the bundle is assembled again at once without Jorge's records (they stay in the raw
 * store, accounted for as left out with the reason), and the next pull brings the right child's.
 * While a pull for the wrong child runs, choosing another patient is refused until it is cancelled.
 */
let world: CareTeamAWorld;
let svc: TestService;
let server: SandboxServer;
let endpointId: string;
let cm: string;
let jorgeId: string;
const jorge = patientOf(readBundle(JORGE));
const childFamily = fixtureIntake().patient.name.family;
/**
 * Team A's Medication that one of the fixture child's prescriptions names. One of Jorge's names it too:
 * a shared resource (not in the Patient compartment) that Jorge's pull stores first.
 */
const sharedMedicationId = ((): string => {
  const order = fixtureBundle('care-team-a').entry?.find((e) => e.resource?.resourceType === 'MedicationRequest')?.resource as MedicationRequest | undefined;
  const id = order?.medicationReference?.reference?.replace(/^Medication\//, '');
  if (!id) throw new Error('no fixture prescription naming a Medication');
  return id;
})();

/** Jorge's records, one of his prescriptions naming team A's shared Medication instead of a code. */
function jorgeSharingTeamAsMedication(): Bundle {
  const bundle = readBundle(JORGE);
  const order = bundle.entry?.find((e) => e.resource?.resourceType === 'MedicationRequest')?.resource as MedicationRequest | undefined;
  if (!order) throw new Error('Jorge has no prescription');
  delete order.medicationCodeableConcept;
  order.medicationReference = { reference: `Medication/${sharedMedicationId}` };
  return bundle;
}

beforeAll(async () => {
  world = await startCareTeamAWorld({}, FAST_CLIENT, { pageSize: 10, maxConcurrency: 4 });
  ({ svc, server, endpointId, cm } = world);
  jorgeId = (await server.load(jorgeSharingTeamAsMedication())).ids.Patient?.[0] ?? '';
}, 60_000);

afterAll(async () => {
  await world?.stop();
});

/**
 * A case whose one source points at Jorge, the wrong child: his id was given for the source (which,
 * his record not matching the intake, waits in review) and the case manager then chose him.
 */
async function caseWithWrongChild(): Promise<{ caseId: string; sourceId: string }> {
  const { id } = (await (await svc.request('POST', '/api/cases', { token: cm, body: fixtureIntake() })).json()) as { id: string };
  const res = await svc.request('POST', `/api/cases/${id}/sources`, { token: cm, body: { endpointId, patient: { id: jorgeId } } });
  expect(res.status).toBe(201);
  const source = (await res.json()) as { id: string; state: string };
  expect(source.state).toBe('needs_review');
  const chosen = await svc.request('POST', `/api/cases/${id}/sources/${source.id}/patient`, { token: cm, body: { patientId: jorgeId } });
  expect(chosen.status).toBe(200);
  expect(((await chosen.json()) as { state: string }).state).toBe('resolved');
  return { caseId: id, sourceId: source.id };
}

async function pullToEnd(caseId: string): Promise<string> {
  const res = await svc.request('POST', `/api/cases/${caseId}/pulls`, { token: cm, body: {} });
  expect(res.status).toBe(202);
  const { pullId } = (await res.json()) as { pullId: string };
  const done = await eventually(
    async () => (await (await svc.request('GET', `/api/cases/${caseId}/pulls/${pullId}`, { token: cm })).json()) as { state: string },
    (p) => ['complete', 'partial', 'failed'].includes(p.state),
    60_000,
  );
  expect(done.state).toBe('complete');
  // The case is records_complete once the pull's bundle is assembled.
  await eventually(async () => ((await (await svc.request('GET', `/api/cases/${caseId}`, { token: cm })).json()) as { status: string }).status, (s) => s === 'records_complete', 30_000);
  return pullId;
}

async function bundleText(caseId: string): Promise<{ version: string | null; text: string }> {
  const res = await svc.request('GET', `/api/cases/${caseId}/bundle`, { token: cm });
  expect(res.status).toBe(200);
  return { version: res.headers.get('x-bundle-version'), text: await res.text() };
}

const pagesOf = (pullId: string): Promise<number> => pagesStoredFor(svc.service.db, pullId);

/** How many backends of the test database wait for a lock in a statement containing `statement`. */
const lockWaitersIn = async (statement: string): Promise<number> =>
  (await svc.service.db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND position($1 in query) > 0`,
    [statement],
  )).rows[0]?.n ?? 0;

const pullStateOf = async (caseId: string, pullId: string): Promise<string> =>
  ((await (await svc.request('GET', `/api/cases/${caseId}/pulls/${pullId}`, { token: cm })).json()) as { state: string }).state;

const choose = (caseId: string, sourceId: string, patientId: string): Promise<Response> =>
  svc.request('POST', `/api/cases/${caseId}/sources/${sourceId}/patient`, { token: cm, body: { patientId } });

interface Completeness {
  totals: { pulled: number; inBundle: number; leftOut: number; balanced: boolean };
  sources: { resourceTypes: { resourceType: string; leftOut: { remoteId: string; versionId: string; reason: string }[] }[] }[];
}

it('leaves the wrong child\'s records out of the bundle once the right child is chosen, and pulls the right one next, with the shared resources her records name', async () => {
  const { caseId, sourceId } = await caseWithWrongChild();
  await pullToEnd(caseId);
  const wrong = await bundleText(caseId);
  expect(wrong.text).toContain(jorge.name?.[0]?.family ?? 'Brekke');
  const jorgesRows = (await svc.service.db.query<{ row: string }>(
    "SELECT resource_type || '/' || remote_id || '/' || version_id AS row FROM raw_resources WHERE case_id = $1 ORDER BY 1",
    [caseId],
  )).rows.map((r) => r.row);
  const pulledForJorge = jorgesRows.length;
  expect(pulledForJorge).toBeGreaterThan(10);
  // His pull stored team A's Medication his prescription names (the right child's name it too).
  const sharedMedicationRows = jorgesRows.filter((row) => row.startsWith(`Medication/${sharedMedicationId}/`));
  expect(sharedMedicationRows).toHaveLength(1);
  const pulledForJorgeReason = `pulled for patient ${jorgeId} at this source, which is no longer the case's patient there (now ${fixturePatientId('care-team-a')})`;

  const res = await choose(caseId, sourceId, fixturePatientId('care-team-a'));
  expect(res.status).toBe(200);
  const chosen = (await res.json()) as { remotePatientId: string; patientChanged: boolean; bundleVersion?: number };
  expect(chosen).toMatchObject({ remotePatientId: fixturePatientId('care-team-a'), patientChanged: true });
  expect(chosen.bundleVersion).toBe(Number(wrong.version) + 1);

  // Assembled again at once: none of Jorge's records; each accounted for as left out, with the reason.
  const cleared = await bundleText(caseId);
  expect(cleared.version).toBe(String(chosen.bundleVersion));
  expect(cleared.text.includes(jorge.name?.[0]?.family ?? 'Brekke')).toBe(false);
  const report = (await (await svc.request('GET', `/api/cases/${caseId}/completeness`, { token: cm })).json()) as Completeness;
  expect(report.totals).toMatchObject({ pulled: pulledForJorge, inBundle: 0, leftOut: pulledForJorge, balanced: true });
  const reasons = new Set(report.sources.flatMap((s) => s.resourceTypes.flatMap((t) => t.leftOut.map((l) => l.reason))));
  expect([...reasons]).toEqual([pulledForJorgeReason]);
  // Jorge's raw records stay in the raw store (raw is never rewritten).
  expect((await svc.service.db.query<{ n: number }>('SELECT count(*)::int AS n FROM raw_resources WHERE case_id = $1', [caseId])).rows[0]?.n).toBe(pulledForJorge);

  // The next pull brings the right child's records, and only those are in the bundle.
  await pullToEnd(caseId);
  const right = await bundleText(caseId);
  expect(Number(right.version)).toBe((chosen.bundleVersion ?? 0) + 1);
  expect(right.text).toContain(childFamily);
  expect(right.text.includes(jorge.name?.[0]?.family ?? 'Brekke')).toBe(false);
  const after = (await (await svc.request('GET', `/api/cases/${caseId}/completeness`, { token: cm })).json()) as Completeness;
  expect(after.totals.balanced).toBe(true);
  expect(after.totals.inBundle).toBeGreaterThan(10);
  // Left out: exactly Jorge's records, for that reason, but the shared Medication the right child's
  // prescription names too. Its row is his pull's (stored once per version), yet not about him: it stays.
  const leftOutAfter = after.sources.flatMap((s) => s.resourceTypes.flatMap((t) => t.leftOut.map((l) => ({ row: `${t.resourceType}/${l.remoteId}/${l.versionId}`, reason: l.reason }))));
  expect(leftOutAfter.map((l) => l.row).sort()).toEqual(jorgesRows.filter((row) => !sharedMedicationRows.includes(row)));
  expect(new Set(leftOutAfter.map((l) => l.reason))).toEqual(new Set([pulledForJorgeReason]));
  expect(after.sources.flatMap((s) => s.resourceTypes).filter((t) => t.resourceType === 'Medication').flatMap((t) => t.leftOut)).toEqual([]);
  // In the bundle, and what the right child's prescription points at.
  const entries = (JSON.parse(right.text) as Bundle).entry ?? [];
  const sharedMedicationUrl = importedFullUrl(server.baseUrl, 'Medication', sharedMedicationId);
  expect(entries.filter((e) => e.fullUrl === sharedMedicationUrl).map((e) => e.resource?.resourceType)).toEqual(['Medication']);
  expect(entries.some((e) => e.resource?.resourceType === 'MedicationRequest' && e.resource.medicationReference?.reference === sharedMedicationUrl)).toBe(true);

  const timeline = ((await (await svc.request('GET', `/api/cases/${caseId}`, { token: cm })).json()) as { timeline: { type: string; data: Record<string, unknown> | null }[] }).timeline;
  // Jorge chosen first (the wrong child, see caseWithWrongChild), then the right child in his place.
  expect(timeline.filter((e) => e.type === 'source_patient_chosen' && e.data?.previousRemotePatientId !== undefined).map((e) => e.data)).toEqual([expect.objectContaining({ sourceId, previousRemotePatientId: jorgeId })]);
}, 120_000);

it('stops a pull under way for the previous child as soon as another patient is chosen', async () => {
  const { caseId, sourceId } = await caseWithWrongChild();
  // Slow enough that the Observations query (14 pages of 10) is still under way when the patient changes.
  server.latencyMs = 400;
  try {
    const res = await svc.request('POST', `/api/cases/${caseId}/pulls`, { token: cm, body: {} });
    const { pullId } = (await res.json()) as { pullId: string };
    await eventually(() => pagesOf(pullId), (n) => n >= 1, 30_000);
    const chosen = await choose(caseId, sourceId, fixturePatientId('care-team-a'));
    expect(chosen.status).toBe(200);
    expect(((await chosen.json()) as { patientChanged: boolean }).patientChanged).toBe(true);
    const pages = await pagesOf(pullId);
    // The pull ends once its running queries reach their next page; not one page more is stored.
    const ended = await eventually(() => pullStateOf(caseId, pullId), (s) => ['complete', 'partial', 'failed', 'cancelled'].includes(s), 30_000);
    expect(['complete', 'cancelled']).toContain(ended);
    expect(await pagesOf(pullId)).toBe(pages);
    const { rows } = await svc.service.db.query<{ state: string; n: number }>(
      `SELECT state, count(*)::int AS n FROM pull_tasks WHERE pull_id = $1 AND state NOT IN ('complete') GROUP BY 1`,
      [pullId],
    );
    expect(rows.map((r) => r.state)).toEqual(['cancelled']);
    expect(rows[0]?.n).toBeGreaterThan(0);
  } finally {
    server.latencyMs = 0;
  }
}, 60_000);

it('removes a source added by mistake: its records leave the bundle, and the endpoint can be added again', async () => {
  const { caseId, sourceId } = await caseWithWrongChild();
  await pullToEnd(caseId);
  const remove = (body: unknown = {}): Promise<Response> => svc.request('POST', `/api/cases/${caseId}/sources/${sourceId}/remove`, { token: cm, body });

  expect((await remove({ reason: '' })).status).toBe(400);
  const before = await bundleText(caseId);
  // Removed while a second pull of it runs: that pull stops asking it at once.
  server.latencyMs = 400;
  let res: Response;
  let pullId: string;
  try {
    ({ pullId } = (await (await svc.request('POST', `/api/cases/${caseId}/pulls`, { token: cm, body: {} })).json()) as { pullId: string });
    await eventually(() => pullStateOf(caseId, pullId), (s) => s === 'running', 30_000);
    res = await remove({ reason: 'Added the wrong care team' });
  } finally {
    server.latencyMs = 0;
  }
  expect(res.status).toBe(200);
  expect(await eventually(() => pullStateOf(caseId, pullId), (s) => s !== 'running' && s !== 'queued', 30_000)).toMatch(/^(complete|cancelled)$/);
  const stopped = await svc.service.db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pull_tasks WHERE pull_id = $1 AND state = 'cancelled' AND last_error = 'stopped: the source was removed from the case'`,
    [pullId],
  );
  expect(stopped.rows[0]?.n).toBeGreaterThan(0);
  const removed = (await res.json()) as { state: string; removed: { reason: string } | null; removedNow: boolean; bundleVersion?: number };
  expect(removed).toMatchObject({ state: 'removed', removed: { reason: 'Added the wrong care team' }, removedNow: true, bundleVersion: Number(before.version) + 1 });

  // Assembled again at once: nothing of the source, not even its name in the narrative; all accounted for.
  const after = await bundleText(caseId);
  expect(after.text.includes(jorge.name?.[0]?.family ?? 'Brekke')).toBe(false);
  expect(after.text.includes('records from care-team-a')).toBe(false);
  const report = (await (await svc.request('GET', `/api/cases/${caseId}/completeness`, { token: cm })).json()) as Completeness;
  expect(report.totals).toMatchObject({ inBundle: 0, merged: 0, balanced: true });
  expect(report.totals.leftOut).toBe(report.totals.pulled);
  const reasons = new Set(report.sources.flatMap((s) => s.resourceTypes.flatMap((t) => t.leftOut.map((l) => l.reason))));
  expect([...reasons]).toEqual(['source removed from the case: Added the wrong care team']);

  // Removing again answers the same without a new version; a removed source takes no patient.
  const again = (await (await remove()).json()) as { state: string; removedNow: boolean; bundleVersion?: number };
  expect(again).toMatchObject({ state: 'removed', removedNow: false });
  expect(again.bundleVersion).toBeUndefined();
  expect((await choose(caseId, sourceId, fixturePatientId('care-team-a'))).status).toBe(409);

  // The endpoint comes back as a new source, for the right child; its pull fills the bundle again.
  const readded = await svc.request('POST', `/api/cases/${caseId}/sources`, { token: cm, body: { endpointId, patient: { id: fixturePatientId('care-team-a') } } });
  expect(readded.status).toBe(201);
  expect(((await readded.json()) as { id: string }).id).not.toBe(sourceId);
  const sources = (await (await svc.request('GET', `/api/cases/${caseId}/sources`, { token: cm })).json()) as { items: { state: string }[] };
  expect(sources.items.map((s) => s.state).sort()).toEqual(['removed', 'resolved']);
  await pullToEnd(caseId);
  const refilled = await bundleText(caseId);
  expect(Number(refilled.version)).toBe((removed.bundleVersion ?? 0) + 1);
  expect(refilled.text).toContain(childFamily);
  expect(refilled.text.includes(jorge.name?.[0]?.family ?? 'Brekke')).toBe(false);
}, 120_000);

it('does not retry, for the new patient, what a partial pull failed to fetch for the previous one', async () => {
  const { caseId, sourceId } = await caseWithWrongChild();
  // Immunizations fail for good (a redirect off the endpoint's origin is refused): the pull ends partial.
  const broken = server.faults.add({ match: 'GET ~Immunization', action: { kind: 'redirect', location: 'https://elsewhere.example/x' } });
  try {
    const res = await svc.request('POST', `/api/cases/${caseId}/pulls`, { token: cm, body: {} });
    const { pullId } = (await res.json()) as { pullId: string };
    type View = { state: string; sources: { resourceTypes: { resourceType: string; state: string; lastError: string | null; query: string }[] }[] };
    const view = async (): Promise<View> => (await (await svc.request('GET', `/api/cases/${caseId}/pulls/${pullId}`, { token: cm })).json()) as View;
    const partial = await eventually(view, (p) => ['complete', 'partial', 'failed'].includes(p.state), 60_000);
    expect(partial.state).toBe('partial');

    expect((await choose(caseId, sourceId, fixturePatientId('care-team-a'))).status).toBe(200);
    const asked = server.requestCount('GET ~Immunization');
    expect((await svc.request('POST', `/api/cases/${caseId}/pulls/${pullId}/retry`, { token: cm })).status).toBe(202);
    const ended = await eventually(view, (p) => ['complete', 'partial', 'failed', 'cancelled'].includes(p.state), 60_000);
    // The failed query was for Jorge: dropped, not asked again; the rest was complete, so the pull is.
    expect(ended.state).toBe('complete');
    expect(server.requestCount('GET ~Immunization')).toBe(asked);
    const dropped = ended.sources.flatMap((s) => s.resourceTypes).filter((t) => t.state === 'cancelled');
    expect(dropped.length).toBeGreaterThan(0);
    expect(dropped.every((t) => t.lastError === 'not retried: its source was removed from the case, or now points at another patient')).toBe(true);
  } finally {
    server.faults.remove(broken);
  }
}, 120_000);

it('never makes an assembly that began before the source changed the latest version: it reads again', async () => {
  const { caseId, sourceId } = await caseWithWrongChild();
  await pullToEnd(caseId);
  const first = Number((await bundleText(caseId)).version);
  let rebuild: Promise<Response> | undefined;
  // Hold the case row: a rebuild reads the raw store (Jorge's records, the source pointing at him) and
  // then waits to store its version.
  await svc.service.db.transaction(async (tx) => {
    await tx.query('SELECT id FROM cases WHERE id = $1 FOR UPDATE', [caseId]);
    rebuild = svc.request('POST', `/api/cases/${caseId}/bundle/rebuild`, { token: cm, body: {} });
    await eventually(() => lockWaitersIn(`FROM cases WHERE id = $1 ${CASE_ROW_LOCK}`), (n) => n > 0, 20_000);
    // Meanwhile the case manager points the source at the right child, and the assembly of that
    // change, which began reading after the rebuild, stores its version first.
    await tx.query('UPDATE case_sources SET remote_patient_id = $2 WHERE id = $1', [sourceId, fixturePatientId('care-team-a')]);
    await tx.query(
      `INSERT INTO case_bundles (case_id, version, bundle_id, bundle, report, options, trigger, read_seq)
       VALUES ($1, $2, 'b-later-read', NULL, '{"totals": {}, "sources": []}', '{}', $3, nextval('assembly_read_seq'))`,
      [caseId, first + 1, `source-patient:${sourceId}`],
    );
  });
  const res = await (rebuild as Promise<Response>);
  expect(res.status).toBe(201);
  // The rebuild read again, after the change: its version is the latest and holds none of Jorge's records.
  expect(((await res.json()) as { version: number }).version).toBe(first + 2);
  const latest = await bundleText(caseId);
  expect(latest.version).toBe(String(first + 2));
  expect(latest.text.includes(jorge.name?.[0]?.family ?? 'Brekke')).toBe(false);
  const report = (await (await svc.request('GET', `/api/cases/${caseId}/completeness`, { token: cm })).json()) as Completeness;
  expect(report.totals).toMatchObject({ inBundle: 0, balanced: true });
  const seqs = (await svc.service.db.query<{ version: number; read_seq: string | null }>(
    'SELECT version, read_seq::text FROM case_bundles WHERE case_id = $1 ORDER BY version',
    [caseId],
  )).rows;
  // Versions follow the order of their reads.
  const order = seqs.map((r) => Number(r.read_seq));
  expect(order).toEqual([...order].sort((a, b) => a - b));
}, 120_000);

describe('a source change whose records must leave the bundle', () => {
  type Problem = { detail?: string; issue?: { diagnostics?: string }[]; outdatedVersion?: number; sourceChanges?: { sourceId: string; change: string }[] };
  const textOf = (p: Problem): string => p.detail ?? p.issue?.map((i) => i.diagnostics ?? '').join(' ') ?? '';
  const caseRecords = async (caseId: string): Promise<{ version: number; outdatedBy?: { sourceId: string; change: string }[] } | null> =>
    ((await (await svc.request('GET', `/api/cases/${caseId}`, { token: cm })).json()) as { records: { version: number; outdatedBy?: { sourceId: string; change: string }[] } | null }).records;

  it('is not served as the current record while assembling it again fails; the change stands, the case managers are told, sending it again assembles it', async () => {
    const { caseId, sourceId } = await caseWithWrongChild();
    await pullToEnd(caseId);
    const wrong = Number((await bundleText(caseId)).version);
    await svc.service.db.exec(`CREATE FUNCTION refuse_case_bundle() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$;
      CREATE TRIGGER refuse_case_bundle BEFORE INSERT ON case_bundles FOR EACH ROW WHEN (NEW.case_id = '${caseId}') EXECUTE FUNCTION refuse_case_bundle();`);
    try {
      const failed = await choose(caseId, sourceId, fixturePatientId('care-team-a'));
      expect(failed.status).toBe(503);
      const problem = (await failed.json()) as Problem;
      expect(problem.detail).toContain(`The change is made (source ${sourceId} now points at another patient)`);
      expect(problem.detail).toContain('Send this request again');
      expect(problem).toMatchObject({ outdatedVersion: wrong, sourceChanges: [{ sourceId, change: 'patient-changed' }] });

      // The change stands.
      const sources = (await (await svc.request('GET', `/api/cases/${caseId}/sources`, { token: cm })).json()) as { items: { id: string; remotePatientId: string }[] };
      expect(sources.items.find((s) => s.id === sourceId)?.remotePatientId).toBe(fixturePatientId('care-team-a'));
      // Jorge's records are still in the latest version: it is not served as the case's record, nor signed on.
      const current = await svc.request('GET', `/api/cases/${caseId}/bundle`, { token: cm });
      expect(current.status).toBe(409);
      const refusal = (await current.json()) as Problem;
      expect(textOf(refusal)).toContain(`bundle version ${wrong}`);
      expect(textOf(refusal)).toContain(`source ${sourceId} now points at another patient`);
      expect((await svc.request('GET', `/api/cases/${caseId}/bundle/summary`, { token: cm })).status).toBe(409);
      expect((await caseRecords(caseId))?.outdatedBy).toEqual([{ sourceId, change: 'patient-changed' }]);
      // Nor assigned: matching would read conditions that may be another child's.
      const assign = await svc.request('POST', `/api/cases/${caseId}/assignment`, { token: cm, body: { match: true } });
      expect(assign.status).toBe(409);
      expect(((await assign.json()) as { missing: { requirement: string; detail: string }[] }).missing).toContainEqual({
        requirement: 'current_records',
        detail: `The case record (bundle version ${wrong}) is outdated: source ${sourceId} now points at another patient after it was assembled; assemble it again (send the source change again, or rebuild).`,
      });
      // Asked for by number, the version stays readable (what an opinion rested on).
      expect((await svc.request('GET', `/api/cases/${caseId}/bundle?version=${wrong}`, { token: cm })).status).toBe(200);
      const told = await eventually(
        async () => ((await (await svc.request('GET', `/api/notifications?caseId=${caseId}`, { token: cm })).json()) as { items: { type: string; message: string }[] }).items,
        (items) => items.some((n) => n.type === 'assembly.failed'),
        20_000,
      );
      expect(told.find((n) => n.type === 'assembly.failed')?.message).toMatch(/^The case record could not be assembled again after another patient was chosen at a source \(the assembly failed \(error\)\): until it is, the current record is not served/);
    } finally {
      await svc.service.db.exec('DROP TRIGGER refuse_case_bundle ON case_bundles; DROP FUNCTION refuse_case_bundle();');
    }

    // Sent again once the cause is fixed: the change is not made twice, the record is assembled without Jorge.
    const again = await choose(caseId, sourceId, fixturePatientId('care-team-a'));
    expect(again.status).toBe(200);
    expect((await again.json()) as object).toMatchObject({ patientChanged: false, bundleVersion: wrong + 1 });
    const cleared = await bundleText(caseId);
    expect(cleared.version).toBe(String(wrong + 1));
    expect(cleared.text.includes(jorge.name?.[0]?.family ?? 'Brekke')).toBe(false);
    expect((await caseRecords(caseId))?.outdatedBy).toBeUndefined();
    // Sent a third time, nothing is left to do: no new version.
    expect(((await (await choose(caseId, sourceId, fixturePatientId('care-team-a'))).json()) as { bundleVersion?: number }).bundleVersion).toBeUndefined();
  }, 120_000);

  it('is waited for by an assembly that begins while it commits, so that assembly leaves the records out', async () => {
    const { caseId, sourceId } = await caseWithWrongChild();
    await pullToEnd(caseId);
    const first = Number((await bundleText(caseId)).version);
    let rebuild: Promise<Response> | undefined;
    // The source removed in a transaction not committed yet; a rebuild begins reading meanwhile.
    await svc.service.db.transaction(async (tx) => {
      await tx.query(`UPDATE case_sources SET state = 'removed', removed_at = now(), removed_by = 'test', removed_reason = 'wrong care team' WHERE id = $1`, [sourceId]);
      await markSourceChanged(tx, sourceId);
      rebuild = svc.request('POST', `/api/cases/${caseId}/bundle/rebuild`, { token: cm, body: {} });
      await eventually(() => lockWaitersIn('FOR SHARE OF s'), (n) => n > 0, 20_000);
    });
    const res = await (rebuild as Promise<Response>);
    expect(res.status).toBe(201);
    expect(((await res.json()) as { version: number }).version).toBe(first + 1);
    // It saw the removal: the record is current, without the source's records.
    const after = await bundleText(caseId);
    expect(after.text.includes(jorge.name?.[0]?.family ?? 'Brekke')).toBe(false);
    expect((await caseRecords(caseId))?.outdatedBy).toBeUndefined();
  }, 120_000);
});
