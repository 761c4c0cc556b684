import { randomUUID } from 'node:crypto';
import type { SandboxServer } from '../../src/sandbox';
import { findPull } from '../../src/pull/pull-repository';
import { PULL_NOT_STARTED_AFTER_MS, PULL_STALLED_AFTER_MS } from '../../src/pull/pull-activity';
import { pullProgress } from '../../src/pull/pull-progress';
import { fixtureIntake } from '../support/fixture-child';
import { insertPullTask, insertTestCase } from '../support/pull-task';
import { openFixtureCase, startCareTeamAWorld, startCasePull, type CareTeamAWorld } from '../support/sandbox-case';
import { eventually, type TestService } from '../support/service';

/**
 * A case manager tells a stuck pull from a slow one: each query says when it started and last moved,
 * the pull when it last moved, and an unfinished pull with no activity for a while is `stalled`, with
 * a hint that says what it waits for. Real service, PostgreSQL, Redis and a sandbox EHR; the clock
 * the stall is judged at is passed (`now`), or the rows' times are set in the database.
 */
let world: CareTeamAWorld;
let svc: TestService;
let server: SandboxServer;
let endpointId: string;
let cm: string;

beforeAll(async () => {
  // No reconcile pass during the file: the pulls written below the workers must get no jobs.
  world = await startCareTeamAWorld({ PULL_JOB_BACKOFF_MS: '50', RECONCILE_EVERY_MS: '3600000' }, {}, { pageSize: 20, maxConcurrency: 8 });
  ({ svc, server, endpointId, cm } = world);
}, 60_000);

afterAll(async () => {
  await world?.stop();
});

interface QueryView {
  query: string;
  state: string;
  pages: number;
  startedAt: string | null;
  lastActivityAt: string;
}
interface PullView {
  state: string;
  createdAt: string;
  lastActivityAt: string;
  stalled: boolean;
  stalledSince: string | null;
  stalledReason: string | null;
  stalledHint: string | null;
  totals: { attachmentsPending: number };
  sources: { resourceTypes: QueryView[] }[];
}

const MINUTE = 60_000;
const later = (iso: string, ms: number): Date => new Date(Date.parse(iso) + ms);
const queriesOf = (p: PullView): QueryView[] => p.sources.flatMap((s) => s.resourceTypes);

/** The pull's progress as the service reads it, `stalled` judged at `now` (default the database's clock). */
async function progress(pullId: string, now?: Date) {
  const pull = await findPull(svc.service.db, pullId);
  if (!pull) throw new Error('no pull');
  return pullProgress(svc.service.db, pull, now ? { now } : {});
}

it("shows a query waiting for the EHR's answer as running since when it started; idle for minutes, the pull says it waits for the EHR", async () => {
  const { caseId } = await openFixtureCase(svc, cm, endpointId);
  const held = server.faults.add({ match: '~Observation', action: { kind: 'hold' } });
  try {
    const pullId = await startCasePull(svc, cm, caseId);
    const read = async (): Promise<PullView> => (await (await svc.request('GET', `/api/cases/${caseId}/pulls/${pullId}`, { token: cm })).json()) as PullView;
    // The EHR has the Observation query and does not answer: the query is running, no page in. The
    // other queries have ended and their documents are in: nothing else moves.
    await eventually(async () => server.faults.rule(held)?.fired ?? 0, (n) => n > 0, 30_000);
    const waiting = await eventually(
      read,
      (p) => p.totals.attachmentsPending === 0 && queriesOf(p).every((q) => q.state === 'complete' || (q.query.includes('Observation') && q.state === 'running')),
      30_000,
    );
    const observation = queriesOf(waiting).find((q) => q.query.includes('Observation'));
    expect(observation).toMatchObject({ state: 'running', pages: 0 });
    expect(observation?.startedAt).not.toBeNull();
    expect(Date.parse(observation?.lastActivityAt ?? '')).toBeGreaterThanOrEqual(Date.parse(observation?.startedAt ?? ''));
    expect(waiting).toMatchObject({ state: 'running', stalled: false, stalledSince: null, stalledReason: null, stalledHint: null });
    expect(Date.parse(waiting.lastActivityAt)).toBeGreaterThanOrEqual(Date.parse(waiting.createdAt));

    // The same pull seen after ten quiet minutes: stalled, waiting for the EHR's answer since its last activity.
    const quiet = await progress(pullId, later(waiting.lastActivityAt, PULL_STALLED_AFTER_MS));
    expect(quiet).toMatchObject({ stalled: true, lastActivityAt: waiting.lastActivityAt, stalledSince: waiting.lastActivityAt, stalledReason: 'awaiting_ehr' });
    expect(quiet.stalledHint).toMatch(/^Waiting for the EHR's answer since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(query [^)]*Observation[^)]* at care-team-a/);
    expect(quiet.stalledHint).toContain('a slow EHR can take minutes for one page');
    expect(quiet.stalledHint).not.toContain(fixtureIntake().patient.name.family);
    // A minute short of that, it is not.
    expect((await progress(pullId, later(quiet.lastActivityAt, PULL_STALLED_AFTER_MS - MINUTE))).stalled).toBe(false);

    server.faults.release(held);
    const ended = await eventually(read, (p) => !['queued', 'running'].includes(p.state), 60_000);
    expect(ended).toMatchObject({ state: 'complete', stalled: false, stalledReason: null });
    // Ended, a pull is never stalled, however long ago it moved.
    expect((await progress(pullId, later(ended.lastActivityAt, 60 * MINUTE))).stalled).toBe(false);
    for (const q of queriesOf(ended)) {
      expect(q.startedAt).not.toBeNull();
      // Its last change (pages, then the end) is no earlier than its start, and the pull's the latest of all.
      expect(Date.parse(q.lastActivityAt)).toBeGreaterThanOrEqual(Date.parse(q.startedAt ?? ''));
      expect(Date.parse(ended.lastActivityAt)).toBeGreaterThanOrEqual(Date.parse(q.lastActivityAt));
    }
    const done = queriesOf(ended).find((q) => q.query === observation?.query);
    expect(Date.parse(done?.lastActivityAt ?? '')).toBeGreaterThan(Date.parse(observation?.lastActivityAt ?? ''));
  } finally {
    server.faults.release(held);
    server.faults.remove(held);
  }
}, 120_000);

describe('pulls below the workers (rows written here, no job queued)', () => {
  /** A case with a pull in `state` created `ageMs` ago (by the database's clock) and one task per type, queued. */
  async function pullWithTasks(state: string, ageMs: number, types: readonly string[]): Promise<{ caseId: string; pullId: string; taskIds: string[] }> {
    const caseId = randomUUID();
    const pullId = randomUUID();
    const db = svc.service.db;
    await insertTestCase(db, caseId);
    await db.query(`INSERT INTO pulls (id, case_id, state, requested_by, created_at) VALUES ($1, $2, $3, 'stall-test', now() - $4::interval)`, [
      pullId, caseId, state, `${ageMs} milliseconds`,
    ]);
    const taskIds: string[] = [];
    for (const type of types) {
      const task = await insertPullTask(db, { caseId, pullId, name: `stall-${type}`, baseUrl: 'https://ehr.example.org/fhir', resourceType: type, path: type });
      taskIds.push(task.id);
    }
    // The tasks were queued when the pull was.
    await db.query(`UPDATE pull_tasks t SET updated_at = p.created_at FROM pulls p WHERE p.id = t.pull_id AND p.id = $1`, [pullId]);
    return { caseId, pullId, taskIds };
  }
  it('says no worker has started a pull queued for minutes, by the database clock when no clock is given', async () => {
    const { caseId, pullId } = await pullWithTasks('queued', PULL_NOT_STARTED_AFTER_MS + MINUTE, ['Condition', 'Observation']);
    const view = await progress(pullId);
    expect(view).toMatchObject({ state: 'queued', stalled: true, stalledReason: 'not_started', stalledSince: view.createdAt, lastActivityAt: view.createdAt });
    expect(view.stalledHint).toBe(`Queued since ${view.createdAt.replace(/\.\d{3}Z$/, 'Z')}: no worker has started it. The pull workers may be down, or busy with other pulls.`);
    for (const q of view.sources.flatMap((s) => s.resourceTypes)) expect(q).toMatchObject({ state: 'queued', startedAt: null, lastActivityAt: view.createdAt });

    // Through the API too: the same fields.
    const res = await svc.request('GET', `/api/cases/${caseId}/pulls/${pullId}`, { token: cm });
    expect(await res.json()).toMatchObject({ stalled: true, stalledReason: 'not_started', stalledSince: view.createdAt });
    // Queued a little while only: not stalled.
    expect((await progress(pullId, later(view.createdAt, PULL_NOT_STARTED_AFTER_MS - 1000))).stalled).toBe(false);
  });

  it('a query waiting for a paused endpoint is not idle until its wait ends; then its pull waits for a worker', async () => {
    const { pullId, taskIds } = await pullWithTasks('running', 0, ['Condition']);
    const db = svc.service.db;
    await db.query(
      `UPDATE pull_tasks SET state = 'running', started_at = now() - interval '30 minutes', updated_at = now() - interval '20 minutes',
         waiting_until = now() + interval '5 minutes' WHERE id = $1`,
      [taskIds[0]],
    );
    await db.query(`UPDATE pulls SET created_at = now() - interval '30 minutes' WHERE id = $1`, [pullId]);
    const now = (await progress(pullId)).lastActivityAt;
    const view = await progress(pullId, later(now, 4 * MINUTE));
    expect(view.stalled).toBe(false);
    const [query] = view.sources.flatMap((s) => s.resourceTypes);
    expect(Date.parse(query?.lastActivityAt ?? '') - Date.parse(query?.startedAt ?? '')).toBe(10 * MINUTE);
    expect(query?.waitingUntil).not.toBeNull();
    // Its wait ended ten minutes ago and no worker took it up again.
    const waitEnded = query?.waitingUntil ?? '';
    const stuck = await progress(pullId, later(waitEnded, PULL_STALLED_AFTER_MS));
    expect(stuck).toMatchObject({ stalled: true, stalledReason: 'awaiting_worker', stalledSince: waitEnded });
    expect(stuck.stalledHint).toMatch(/^No query has moved since .*: 1 still to run, none picked up\./);
  });

  it('a running pull whose queries all ended waits for its documents, then for its end', async () => {
    const { caseId, pullId, taskIds } = await pullWithTasks('running', 40 * MINUTE, ['DocumentReference']);
    const db = svc.service.db;
    await db.query(`UPDATE pull_tasks SET state = 'complete', started_at = now() - interval '40 minutes', finished_at = now() - interval '30 minutes',
      updated_at = now() - interval '30 minutes' WHERE id = $1`, [taskIds[0]]);
    const { rows } = await db.query<{ source_id: string }>('SELECT source_id FROM pull_tasks WHERE id = $1', [taskIds[0]]);
    const attachmentId = randomUUID();
    await db.query(
      `INSERT INTO attachments (id, case_id, source_id, task_id, resource_type, remote_id, position, url, data_sha256, inline, state, updated_at)
       VALUES ($1, $2, $3, $4, 'DocumentReference', 'd1', 'content[0]', 'https://ehr.example.org/fhir/Binary/b1', NULL, false, 'pending', now() - interval '20 minutes')`,
      [attachmentId, caseId, rows[0]?.source_id, taskIds[0]],
    );
    const view = await progress(pullId);
    // The document's last change is the pull's last activity, twenty minutes ago.
    expect(Date.parse(view.lastActivityAt)).toBeGreaterThan(Date.parse(view.sources[0]?.resourceTypes[0]?.lastActivityAt ?? ''));
    expect(view).toMatchObject({ stalled: true, stalledReason: 'awaiting_documents', stalledSince: view.lastActivityAt });
    expect(view.stalledHint).toMatch(/^Every query has ended; 1 document still to download, none finished since /);

    await db.query(`UPDATE attachments SET state = 'fetched' WHERE id = $1`, [attachmentId]);
    const closed = await progress(pullId);
    expect(closed).toMatchObject({ stalled: true, stalledReason: 'awaiting_finish' });
    expect(closed.stalledHint).toContain('the pull has not been closed');
  });
});
