import type { Bundle, Observation } from 'fhir/r4';
import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { openCaseAtEndpoint, pullAndAssemble as pullCaseAndAssemble } from '../support/pull-and-assemble';
import { FAST_CLIENT, startTestService, type TestService } from '../support/service';
import { startVersionlessProxy, type VersionlessProxy } from './versionless-proxy';

/**
 * An EHR that sends no `meta.versionId` (nor `meta.lastUpdated`; both optional,
 * https://hl7.org/fhir/R4/resource.html#Meta): a record changed there between two pulls is stored as a
 * new raw row, keyed by its content, and the bundle assembled after the second pull holds the new value;
 * an unchanged record is stored once; a record changed back to its first content is a change too.
 */
let svc: TestService;
let ehr: SandboxServer;
let proxy: VersionlessProxy;
let cm: string;
let caseId: string;

const patient = { resourceType: 'Patient' as const, id: 'p1', name: [{ family: 'Quill', given: ['Ada'] }], birthDate: '2016-01-02' };
const observation = (id: string, text: string, at: string, value: string): Observation => ({
  resourceType: 'Observation',
  id,
  status: 'final',
  code: { text },
  subject: { reference: 'Patient/p1' },
  effectiveDateTime: at,
  valueString: value,
});

beforeAll(async () => {
  [svc, ehr] = await Promise.all([startTestService({}, FAST_CLIENT), startSandboxServer({ name: 'ehr', auth: 'none' })]);
  proxy = await startVersionlessProxy(ehr.baseUrl);
  await ehr.load([
    patient,
    observation('changing', 'Changing note', '2026-01-05T10:00:00Z', 'first reading'),
    observation('steady', 'Steady note', '2026-01-06T10:00:00Z', 'never changes'),
  ]);
  cm = await svc.token('case_manager');
  caseId = await openCaseAtEndpoint(svc, cm, { name: 'Versionless EHR', baseUrl: proxy.baseUrl });
}, 60_000);

afterAll(async () => {
  await proxy.stop();
  await Promise.all([svc.stop(), ehr.stop()]);
});

/** Pulls the case's records and waits for the bundle version the pull assembled; returns that bundle. */
const pullAndAssemble = (): Promise<Bundle> => pullCaseAndAssemble(svc, cm, caseId);

/** `valueString` of the bundle's Observation named `text`, the only one so named. */
function valueOf(bundle: Bundle, text: string): string | undefined {
  const found = (bundle.entry ?? []).map((e) => e.resource).filter((r): r is Observation => r?.resourceType === 'Observation' && r.code.text === text);
  expect(found).toHaveLength(1);
  return found[0]?.valueString;
}

/** The raw rows stored for a remote Observation, oldest first. */
async function rawRowsOf(remoteId: string): Promise<{ version_id: string; value: string }[]> {
  const { rows } = await svc.service.db.query<{ version_id: string; value: string }>(
    `SELECT version_id, resource->>'valueString' AS value FROM raw_resources
      WHERE case_id = $1 AND resource_type = 'Observation' AND remote_id = $2 ORDER BY fetched_at`,
    [caseId, remoteId],
  );
  return rows;
}

it('keeps every changed content of a record without versionId, and the bundle the newest', async () => {
  const first = await pullAndAssemble();
  expect(valueOf(first, 'Changing note')).toBe('first reading');
  expect(valueOf(first, 'Steady note')).toBe('never changes');

  await ehr.load([observation('changing', 'Changing note', '2026-01-05T10:00:00Z', 'corrected reading')]);
  const second = await pullAndAssemble();
  expect(valueOf(second, 'Changing note')).toBe('corrected reading');
  expect(valueOf(second, 'Steady note')).toBe('never changes');
  // Raw stays as received: both contents, each keyed by its SHA-256; the unchanged record once.
  const changing = await rawRowsOf('changing');
  expect(changing.map((r) => r.value)).toEqual(['first reading', 'corrected reading']);
  for (const row of changing) expect(row.version_id).toMatch(/^sha256:[0-9a-f]{64}$/);
  expect(await rawRowsOf('steady')).toHaveLength(1);

  // Changed back to the first content: still a change, not the first row found again.
  await ehr.load([observation('changing', 'Changing note', '2026-01-05T10:00:00Z', 'first reading')]);
  const third = await pullAndAssemble();
  expect(valueOf(third, 'Changing note')).toBe('first reading');
  expect((await rawRowsOf('changing')).map((r) => r.value)).toEqual(['first reading', 'corrected reading', 'first reading']);
  expect(await rawRowsOf('steady')).toHaveLength(1);
}, 180_000);
