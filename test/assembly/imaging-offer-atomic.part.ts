import type { Bundle } from 'fhir/r4';
import { assembleCase } from '../../src/assembly/assemble';
import { loadTerminologyMappings } from '../../src/normalize/terminology';
import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { openCaseAtEndpoint, pullAndAssemble } from '../support/pull-and-assemble';
import { FAST_CLIENT, startTestService, type TestService } from '../support/service';
import { refuseWrites } from '../support/pg-fault';

/**
 * A bundle version that holds imaging and the radiology-review offer it makes commit together. A job
 * run again after a crash finds the version stored and assembles nothing more, so an offer left for
 * after the commit would never be made. Real PostgreSQL: a trigger refuses the offer's timeline event
 * (a sequence counts the refusals: nextval is not rolled back), and the assembly must then store no
 * version either; the fault gone, the next assembly stores the version and makes the offer, once.
 */
let svc: TestService;
let ehr: SandboxServer;
let cm: string;

beforeAll(async () => {
  [svc, ehr] = await Promise.all([startTestService({}, FAST_CLIENT), startSandboxServer({ name: 'ehr', auth: 'none' })]);
  await ehr.load([
    { resourceType: 'Patient', id: 'p1', name: [{ family: 'Quill', given: ['Ada'] }], birthDate: '2016-01-02' },
    {
      resourceType: 'ImagingStudy',
      id: 'bone-age',
      status: 'available',
      subject: { reference: 'Patient/p1' },
      started: '2026-01-05T10:00:00Z',
      identifier: [{ system: 'urn:dicom:uid', value: 'urn:oid:1.2.826.0.1.3680043.8.498.1' }],
      description: 'Bone age, left hand',
    },
  ]);
  cm = await svc.token('case_manager');
}, 60_000);

afterAll(async () => {
  await Promise.all([svc.stop(), ehr.stop()]);
});

const versions = async (caseId: string): Promise<number> =>
  Number((await svc.service.db.query<{ n: string }>('SELECT count(*) AS n FROM case_bundles WHERE case_id = $1', [caseId])).rows[0]?.n ?? 0);
const offers = async (caseId: string): Promise<number> =>
  Number((await svc.service.db.query<{ n: string }>(`SELECT count(*) AS n FROM case_events WHERE case_id = $1 AND type = 'addon_offered'`, [caseId])).rows[0]?.n ?? 0);
const offered = async (caseId: string): Promise<string[]> =>
  (await svc.service.db.query<{ addons_offered: string[] }>('SELECT addons_offered FROM cases WHERE id = $1', [caseId])).rows[0]?.addons_offered ?? [];

it('stores no bundle version holding imaging when its radiology-review offer cannot be written, and both once it can', async () => {
  const caseId = await openCaseAtEndpoint(svc, cm, { name: 'EHR', baseUrl: ehr.baseUrl });
  const bundle: Bundle = await pullAndAssemble(svc, cm, caseId);
  expect(bundle.entry?.some((e) => e.resource?.resourceType === 'ImagingStudy')).toBe(true);
  expect([await versions(caseId), await offers(caseId), await offered(caseId)]).toEqual([1, 1, ['radiology-review']]);
  // As if the offer had not been made yet (a case whose imaging has just arrived).
  await svc.service.db.query(`UPDATE cases SET addons_offered = '{}' WHERE id = $1`, [caseId]);
  await svc.service.db.query(`DELETE FROM case_events WHERE case_id = $1 AND type = 'addon_offered'`, [caseId]);

  const fault = await refuseWrites(svc.service.db, {
    name: 'offer',
    table: 'case_events',
    operation: 'INSERT',
    when: `NEW.type = 'addon_offered' AND NEW.case_id = '${caseId}'`,
  });
  const deps = { db: svc.service.db, mappings: () => loadTerminologyMappings() };
  try {
    await expect(assembleCase(deps, caseId, { trigger: 'rebuild' })).rejects.toThrow(/offer refused/);
    expect(await fault.refusals()).toBe(1);
    // Neither the version nor the offer.
    expect([await versions(caseId), await offers(caseId), await offered(caseId)]).toEqual([1, 0, []]);
  } finally {
    await fault.remove();
  }
  const again = await assembleCase(deps, caseId, { trigger: 'rebuild' });
  expect(again.version).toBe(2);
  expect([await versions(caseId), await offers(caseId), await offered(caseId)]).toEqual([2, 1, ['radiology-review']]);
}, 90_000);
