import { markSourceChanged, reassemblerOfOutdatedRecords } from '../../src/assembly/source-changes';
import { loadTerminologyMappings } from '../../src/normalize/terminology';
import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { fixtureBundle } from '../support/fixture-child';
import { openFixtureCase, registerOpenEndpoint, startCasePull } from '../support/sandbox-case';
import { bundleAssembled, eventually, FAST_CLIENT, startTestService, type TestService } from '../support/service';

/**
 * A source change (a removed care team, another child chosen there) assembles the case again in its
 * own request, and until that version is stored the case record is not served (409). When the process
 * dies during that assembly nothing else assembled it: the record stayed unserved, the case could not
 * be assigned, and nobody was told. The reconciler now assembles again a case found outdated, at the
 * same version, on two runs in a row (a request still assembling is not raced), and tells the case
 * managers once when it cannot.
 *
 * The service's own reconciler is held off (an hour between runs); the test runs the reconciler's
 * part itself, run by run. The crash is the change's transaction committed with no assembly after it.
 */
let svc: TestService;
let ehr: SandboxServer;
let cm: string;
let endpointId: string;

beforeAll(async () => {
  [svc, ehr] = await Promise.all([startTestService({ RECONCILE_EVERY_MS: '3600000' }, FAST_CLIENT), startSandboxServer({ name: 'care-team-a', auth: 'none' })]);
  await ehr.load(fixtureBundle('care-team-a'));
  cm = await svc.token('case_manager');
  endpointId = await registerOpenEndpoint(svc, 'Care team A', ehr.baseUrl);
}, 60_000);

afterAll(async () => {
  await Promise.all([svc.stop(), ehr.stop()]);
});

/** A case pulled and assembled, then its source removed by a request whose process died before assembling. */
async function caseLeftOutdated(): Promise<{ caseId: string; version: number }> {
  const { caseId, sourceId } = await openFixtureCase(svc, cm, endpointId);
  await startCasePull(svc, cm, caseId);
  await bundleAssembled(svc, caseId, cm);
  const version = Number((await svc.request('GET', `/api/cases/${caseId}/bundle`, { token: cm })).headers.get('x-bundle-version'));
  await svc.service.db.transaction(async (tx) => {
    await tx.query(`UPDATE case_sources SET state = 'removed', removed_at = now(), removed_by = 'test', removed_reason = 'wrong care team' WHERE id = $1`, [sourceId]);
    await markSourceChanged(tx, sourceId);
  });
  expect((await svc.request('GET', `/api/cases/${caseId}/bundle`, { token: cm })).status).toBe(409);
  return { caseId, version };
}

const deps = () => ({ db: svc.service.db, mappings: () => loadTerminologyMappings() });

it('assembles again a case a source change left outdated, on the second run that finds it so', async () => {
  const { caseId, version } = await caseLeftOutdated();
  const reconcile = reassemblerOfOutdatedRecords(deps());
  // First seen: its own request may still be assembling it.
  expect(await reconcile()).toBe(0);
  expect((await svc.request('GET', `/api/cases/${caseId}/bundle`, { token: cm })).status).toBe(409);
  // Still outdated a run later: assembled again, without the removed source's records.
  expect(await reconcile()).toBe(1);
  const served = await svc.request('GET', `/api/cases/${caseId}/bundle`, { token: cm });
  expect(served.status).toBe(200);
  expect(Number(served.headers.get('x-bundle-version'))).toBe(version + 1);
  const { rows } = await svc.service.db.query<{ trigger: string }>('SELECT trigger FROM case_bundles WHERE case_id = $1 AND version = $2', [caseId, version + 1]);
  expect(rows[0]?.trigger).toBe('source-change-reconcile');
  // Nothing left to do.
  expect(await reconcile()).toBe(0);
}, 120_000);

it('tells the case managers once when it cannot assemble the case again, and keeps trying', async () => {
  const { caseId } = await caseLeftOutdated();
  await svc.service.db.exec(`CREATE FUNCTION refuse_reconciled_bundle() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$;
    CREATE TRIGGER refuse_reconciled_bundle BEFORE INSERT ON case_bundles FOR EACH ROW WHEN (NEW.case_id = '${caseId}') EXECUTE FUNCTION refuse_reconciled_bundle();`);
  try {
    const reconcile = reassemblerOfOutdatedRecords(deps());
    for (let run = 0; run < 4; run++) expect(await reconcile()).toBe(0);
    const told = await eventually(
      async () => ((await (await svc.request('GET', `/api/notifications?caseId=${caseId}`, { token: cm })).json()) as { items: { type: string; message: string }[] }).items,
      (items) => items.some((n) => n.type === 'assembly.failed'),
      20_000,
    );
    const failures = told.filter((n) => n.type === 'assembly.failed');
    expect(failures).toHaveLength(1);
    expect(failures[0]?.message).toMatch(/^The case record could not be assembled again after a source change whose own assembly never ended/);
  } finally {
    await svc.service.db.exec('DROP TRIGGER refuse_reconciled_bundle ON case_bundles; DROP FUNCTION refuse_reconciled_bundle();');
  }
}, 120_000);
