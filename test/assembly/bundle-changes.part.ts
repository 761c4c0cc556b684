import { randomUUID } from 'node:crypto';
import type { Bundle, DiagnosticReport, FhirResource, Observation, Patient } from 'fhir/r4';
import { bundleChanges } from '../../src/assembly/bundle-changes';
import { insertBundleVersion } from '../../src/assembly/bundle-repository';
import type { Database } from '../../src/db/database';
import { describe as describeLine } from '../../src/normalize/composition';
import { openBackendDatabase } from '../support/postgres';
import { insertTestCase } from '../support/pull-task';

/**
 * The "what changed" lines are the lines the section narrative shows: a changed entry is described
 * with the other entries of its version at hand (a report's results, the child's birth date).
 */
const url = (n: number): string => `urn:uuid:00000000-0000-5000-8000-${String(n).padStart(12, '0')}`;
const PATIENT = url(1);
const patient: Patient = { resourceType: 'Patient', id: 'p', birthDate: '2015-03-01' };
const result = (id: string, text: string, value: number): Observation => ({
  resourceType: 'Observation', id, status: 'final', code: { text }, subject: { reference: PATIENT }, effectiveDateTime: '2025-06-01',
  valueQuantity: { value, unit: 'mIU/L' },
  referenceRange: [
    { low: { value: 0.7, unit: 'mIU/L' }, high: { value: 6, unit: 'mIU/L' }, age: { high: { value: 5, unit: 'a', code: 'a' } } },
    { low: { value: 0.5, unit: 'mIU/L' }, high: { value: 4.5, unit: 'mIU/L' }, age: { low: { value: 6, unit: 'a', code: 'a' } } },
  ],
});
const report = (results: number[]): DiagnosticReport => ({
  resourceType: 'DiagnosticReport', id: 'r', status: 'final', code: { text: 'Thyroid panel' }, effectiveDateTime: '2025-06-01',
  result: results.map((n) => ({ reference: url(n) })),
});
const bundle = (entries: [number, FhirResource][]): Bundle => ({
  resourceType: 'Bundle', type: 'document', timestamp: '2025-06-02T00:00:00Z', entry: entries.map(([n, resource]) => ({ fullUrl: url(n), resource })),
});

let handle: Awaited<ReturnType<typeof openBackendDatabase>> | undefined;
let db: Database;

beforeAll(async () => {
  handle = await openBackendDatabase('postgres');
  db = handle.db;
}, 60_000);

afterAll(async () => {
  await handle?.close();
});

it('describes a changed report and result as their sections do: the results named, the range for the child\'s age', async () => {
  const caseId = randomUUID();
  await insertTestCase(db, caseId);
  const tsh = result('tsh', 'TSH', 4.8);
  const before = bundle([[1, patient], [2, result('tsh', 'TSH', 3.1)], [3, result('ft4', 'Free T4', 1.2)], [4, report([2])]]);
  const after: [number, FhirResource][] = [[1, patient], [2, tsh], [3, result('ft4', 'Free T4', 1.2)], [4, report([2, 3])]];
  for (const [i, b] of [before, bundle(after)].entries()) {
    await insertBundleVersion(db, { caseId, bundleId: `b${i}`, bundle: b, report: {}, options: {}, trigger: 'test' });
  }
  const changes = await bundleChanges(db, caseId, 1, 2, 10);
  if ('missing' in changes) throw new Error(`version ${changes.missing} missing`);
  const byUrl = new Map(after.map(([n, r]) => [url(n), r]));
  const line = (n: number): string | undefined => changes.changed.find((c) => c.fullUrl === url(n))?.description;
  expect(changes.changed.map((c) => c.fullUrl).sort()).toEqual([url(2), url(4)]);
  expect(line(4)).toBe(describeLine(report([2, 3]), byUrl));
  expect(line(4)).toContain('2 results: TSH; Free T4');
  expect(line(2)).toBe(describeLine(tsh, byUrl));
  // 10 years old on the day: the range from 6 years, and the value above it.
  expect(line(2)).toContain('reference range 0.5–4.5 mIU/L (age ≥6 a) — above reference range (computed)');
});
