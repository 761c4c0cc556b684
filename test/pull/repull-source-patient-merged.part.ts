import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import IORedis from 'ioredis';
import type { Patient } from 'fhir/r4';
import { scanSearchPage } from '../../src/fhir';
import { pageEntries } from '../../src/pull/page-resources';
import type { PullWorkerDeps } from '../../src/pull/pull-deps';
import { commitPage, findTask, insertPull, insertTask, setPullState } from '../../src/pull/pull-repository';
import { runPullTask } from '../../src/pull/pull-task-runner';
import { fixturePatientId } from '../support/fixture-child';
import { eventually } from '../support/service';
import { startRepullWorld, type RepullWorld } from './repull-support';
import { pullWorkerDepsForTest } from '../support/pull-task';

/**
 * Every pull reads the child's Patient at each source again (source-patient-query.ts). When the care
 * team merged that record into another (`link` of type `replaced-by`, https://hl7.org/fhir/R4/patient-definitions.html#Patient.link)
 * or made it inactive (`active: false`), the source no longer points at the child's live record: it goes
 * to `needs_review`, with the reason and the surviving record as a candidate, its queries stop, the pull
 * does not end complete (the case manager is told by `pull.partial` / `pull.failed`, naming the source
 * in `reviewSourceIds`), once however often the page is read again. A correction (a new name) is not that.
 */

const DAY = 24 * 3600_000;
let ehrNow = Date.now() - 10 * DAY;
let world: RepullWorld;
let original: Patient;
const childId = fixturePatientId('care-team-a');

interface SourceView { id: string; state: string; remotePatientId: string | null; reviewReason: string | null; candidates: { id: string }[] }
interface PullView {
  state: string;
  failedSources: { sourceId: string; reviewReason?: string }[];
  sources: { sourceId: string; state: string; sourceState: string; reviewReason: string | null; resourceTypes: { query: string; state: string; lastError: string | null }[] }[];
}

beforeAll(async () => {
  world = await startRepullWorld(() => ehrNow);
  original = world.teamA.read('Patient', childId) as Patient;
}, 60_000);
afterEach(async () => {
  // The next test's case finds the child's record as the fixture has it.
  const { meta: _meta, ...rest } = original;
  await world.teamA.load([rest as Patient], { preserveLastUpdated: false });
});
afterAll(async () => {
  await world.stop();
});

/** Care team A changes the child's Patient (a day later on its clock). */
async function changePatient(change: (p: Patient) => Patient): Promise<void> {
  ehrNow += DAY;
  const { meta: _meta, ...rest } = world.teamA.read('Patient', childId) as Patient;
  await world.teamA.load([change(rest as Patient)], { preserveLastUpdated: false });
}

async function sourceOf(caseId: string): Promise<SourceView> {
  const cm = await world.svc.token('case_manager');
  const sources = ((await (await world.svc.request('GET', `/api/cases/${caseId}/sources`, { token: cm })).json()) as { items: SourceView[] }).items;
  if (!sources[0]) throw new Error('no source');
  return sources[0];
}

async function pullView(caseId: string, pullId: string): Promise<PullView> {
  const cm = await world.svc.token('case_manager');
  return (await (await world.svc.request('GET', `/api/cases/${caseId}/pulls/${pullId}`, { token: cm })).json()) as PullView;
}

async function caseEvents(caseId: string, type: string): Promise<{ reason: string | null; data: Record<string, unknown> }[]> {
  const { rows } = await world.svc.service.db.query<{ reason: string | null; data: Record<string, unknown> }>(
    'SELECT reason, data FROM case_events WHERE case_id = $1 AND type = $2 ORDER BY id',
    [caseId, type],
  );
  return rows;
}

async function caseStatus(caseId: string): Promise<string | undefined> {
  return (await world.svc.service.db.query<{ status: string }>('SELECT status FROM cases WHERE id = $1', [caseId])).rows[0]?.status;
}

/** The outbox events telling the case manager a pull of the case did not end complete. */
async function pullAlerts(caseId: string): Promise<{ type: string; data: Record<string, unknown> }[]> {
  const { rows } = await world.svc.service.db.query<{ type: string; data: Record<string, unknown> }>(
    "SELECT type, data FROM outbox WHERE case_id = $1 AND type IN ('pull.partial', 'pull.failed') ORDER BY id",
    [caseId],
  );
  return rows;
}

const merged = (p: Patient): Patient => ({ ...p, active: false, link: [{ type: 'replaced-by', other: { reference: 'Patient/nora-survivor' } }] });

it('a correction (a new name) leaves the source resolved and the pull complete', async () => {
  const caseId = await world.openCase();
  expect((await world.pull(caseId, {})).state).toBe('complete');
  await changePatient((p) => ({ ...p, name: [{ use: 'official', family: 'Halvorsen', given: ['Nora', 'Elisabeth'] }] }));
  const again = await world.pull(caseId, { types: ['Condition'] });
  expect(again.state).toBe('complete');
  expect(await sourceOf(caseId)).toMatchObject({ state: 'resolved', remotePatientId: childId, reviewReason: null });
  expect((await pullView(caseId, again.pullId)).sources[0]).toMatchObject({ state: 'complete', sourceState: 'resolved', reviewReason: null });
  expect(await caseEvents(caseId, 'source_needs_review')).toEqual([]);
}, 120_000);

it('a record merged into another (replaced-by): the source needs review, with the surviving record as a candidate and the reason; the case manager is told once', async () => {
  const caseId = await world.openCase();
  expect((await world.pull(caseId, {})).state).toBe('complete');
  // The first pull's bundle assembled: the case is records_complete (the re-pull moves it back to collecting_records).
  await eventually(() => caseStatus(caseId), (s) => s === 'records_complete');
  await changePatient(merged);
  const again = await world.pull(caseId, { types: ['Condition'] });
  // The Patient query failed with the reason; the Condition query was stopped, or had completed first.
  expect(['partial', 'failed']).toContain(again.state);

  const source = await sourceOf(caseId);
  expect(source.state).toBe('needs_review');
  expect(source.remotePatientId).toBe(childId);
  expect(source.reviewReason).toMatch(new RegExp(`^The care team's record for this child \\(Patient/${childId}\\) was merged into Patient/nora-survivor on \\S+: it was replaced by Patient/nora-survivor there \\(link replaced-by\\): choose that record instead; it is inactive there \\(active: false\\)\\.`));
  expect(source.reviewReason).toContain(`POST /api/cases/${caseId}/sources/${source.id}/patient, e.g. Patient/nora-survivor`);
  expect(source.candidates).toEqual([{ id: 'nora-survivor', identifiers: [] }]);

  // The pull says it: the source's standing and reason, the Patient query failed with it.
  const view = await pullView(caseId, again.pullId);
  expect(view.sources[0]).toMatchObject({ state: 'failed', sourceState: 'needs_review', reviewReason: source.reviewReason });
  expect(view.sources[0]?.resourceTypes.find((t) => t.query === 'Patient')).toMatchObject({ state: 'failed', lastError: source.reviewReason });
  expect(view.sources[0]?.resourceTypes.find((t) => t.query !== 'Patient')?.state).toMatch(/^(cancelled|complete)$/);
  expect(view.failedSources).toEqual([{ sourceId: source.id, endpointName: 'Care team A', reviewReason: source.reviewReason }]);

  // The merged record is kept in the raw store as received.
  const { rows } = await world.svc.service.db.query<{ resource: Patient }>(
    "SELECT resource FROM raw_resources WHERE case_id = $1 AND resource_type = 'Patient' AND remote_id = $2 AND pull_id = $3",
    [caseId, childId, again.pullId],
  );
  expect(rows.map((r) => r.resource.link?.[0]?.type)).toEqual(['replaced-by']);

  // Told once: the timeline, and the pull's alert naming the source in review; the case stays collecting_records (not complete).
  const events = await caseEvents(caseId, 'source_needs_review');
  expect(events).toHaveLength(1);
  expect(events[0]).toMatchObject({ reason: source.reviewReason, data: { sourceId: source.id, pullId: again.pullId, remotePatientId: childId, replacedBy: ['Patient/nora-survivor'], inactive: true } });
  const alerts = await pullAlerts(caseId);
  expect(alerts).toEqual([{ type: `pull.${again.state}`, data: { caseId, pullId: again.pullId, failedSourceIds: [source.id], reviewSourceIds: [source.id] } }]);
  const cm = await world.svc.token('case_manager');
  const notes = await eventually(
    async () => ((await (await world.svc.request('GET', `/api/notifications?caseId=${caseId}`, { token: cm })).json()) as { items: { type: string; message: string }[] }).items,
    (items) => items.some((n) => n.type.startsWith('pull.')),
  );
  const pullNotes = notes.filter((n) => n.type.startsWith('pull.'));
  expect(pullNotes).toHaveLength(1);
  // It says what to do: choose the patient again, not retry.
  expect(pullNotes[0]?.message).toMatch(/One source needs review: the care team merged or deactivated the child's record there .* Choose the patient there, then pull again\.$/);
  expect(await caseStatus(caseId)).toBe('collecting_records');

  // No pull asks the source again until the patient is chosen (its only source: none is ready).
  const refused = await world.svc.request('POST', `/api/cases/${caseId}/pulls`, { token: cm, body: {} });
  expect(refused.status).toBe(409);
}, 120_000);

it('an inactive record (active: false, no successor): the source needs review, with no candidate', async () => {
  const caseId = await world.openCase();
  expect((await world.pull(caseId, {})).state).toBe('complete');
  await changePatient((p) => ({ ...p, active: false }));
  const again = await world.pull(caseId, { types: ['Condition'] });
  expect(['partial', 'failed']).toContain(again.state);
  const source = await sourceOf(caseId);
  expect(source).toMatchObject({ state: 'needs_review', candidates: [] });
  expect(source.reviewReason).toMatch(new RegExp(`^The care team's record for this child \\(Patient/${childId}\\) was made inactive on \\S+: it is inactive there \\(active: false\\)\\. Choose the child's patient there again \\(POST /api/cases/${caseId}/sources/${source.id}/patient\\): until then this source is not pulled`));
  expect(await caseEvents(caseId, 'source_needs_review')).toHaveLength(1);
  expect(await pullAlerts(caseId)).toHaveLength(1);
}, 120_000);

it('the Patient page read again (a job retried, a worker killed after storing it) changes the source once and writes one event', async () => {
  const caseId = await world.openCase();
  expect((await world.pull(caseId, {})).state).toBe('complete');
  await changePatient(merged);
  const db = world.svc.service.db;
  const sourceId = (await sourceOf(caseId)).id;

  // A pull whose Patient page was stored, its worker dying before it judged the page.
  const pullId = randomUUID();
  const taskId = randomUUID();
  await insertPull(db, { id: pullId, caseId, since: null, types: ['Condition'], requestedBy: 'test' });
  await insertTask(db, { id: taskId, pullId, sourceId, resourceType: 'Patient', queryKey: 'Patient', path: 'Patient', params: { _id: childId }, remotePatientId: childId });
  const body = Buffer.from(await (await fetch(`${world.teamA.baseUrl}/Patient?_id=${childId}`)).arrayBuffer());
  const task = await findTask(db, taskId);
  if (!task) throw new Error('no task');
  const page = scanSearchPage(body, body.length, world.teamA.baseUrl);
  expect((await commitPage(db, { task, caseId, fromUrl: null, pageNo: 1, body, fetchedAt: new Date(), entries: pageEntries(page), nextUrl: null, retriesDelta: 0, attachments: [] })).committed).toBe(true);
  expect((await sourceOf(caseId)).state).toBe('resolved');

  const redis = new IORedis(world.svc.config.redisUrl, { maxRetriesPerRequest: 1 });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sob-merged-'));
  try {
    const deps: PullWorkerDeps = pullWorkerDepsForTest(db, redis, `${world.svc.config.queuePrefix}:fhir-direct:`, dir, 1024);
    // The job runs again: it finds every page stored, judges the stored Patient, puts the source in review.
    await expect(runPullTask(deps, taskId, { isLastAttempt: false })).rejects.toThrow(/was merged into Patient\/nora-survivor/);
    const first = await sourceOf(caseId);
    expect(first).toMatchObject({ state: 'needs_review', candidates: [{ id: 'nora-survivor', identifiers: [] }] });
    const updatedAt = (await db.query<{ updated_at: Date }>('SELECT updated_at FROM case_sources WHERE id = $1', [sourceId])).rows[0]?.updated_at;
    // …and once more (retried again): the same end, nothing changed or written twice.
    await expect(runPullTask(deps, taskId, { isLastAttempt: false })).rejects.toThrow(/was merged into Patient\/nora-survivor/);
    expect(await sourceOf(caseId)).toEqual(first);
    expect((await db.query<{ updated_at: Date }>('SELECT updated_at FROM case_sources WHERE id = $1', [sourceId])).rows[0]?.updated_at).toEqual(updatedAt);
    expect(await caseEvents(caseId, 'source_needs_review')).toHaveLength(1);
    expect(await findTask(db, taskId)).toMatchObject({ state: 'failed', lastError: first.reviewReason, pages: 1 });
    // No alert from a task's run: the pull's end tells, once (finish-pull.ts).
    expect(await pullAlerts(caseId)).toEqual([]);
  } finally {
    // Ended here, so that the reconciler does not take up the hand-made pull.
    await setPullState(db, pullId, 'failed', true);
    redis.disconnect();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 120_000);
