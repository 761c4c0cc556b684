import fs from 'node:fs';
import path from 'node:path';
import type { Bundle } from 'fhir/r4';
import { unresolvedReferences } from '../../src/normalize/bundle';
import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { bundleValidationErrors } from '../support/fhir-validation';
import { bundleAssembled, FAST_CLIENT, startTestService, type TestService } from '../support/service';
import { intakeFor, patientOf, readBundle, SHARED_DATA } from '../support/synthea';

/**
 * Every real patient in ../shared/data (Synthea, newer Synthea with notes, US Core test patients),
 * pulled through a sandbox server by the real pipeline and assembled: the bundle validates against
 * the R4 definitions with zero errors, every urn:uuid reference resolves, and the completeness
 * report balances.
 */
const PATIENTS = [
  ...fs.readdirSync(path.join(SHARED_DATA, 'fhir/synthea-smart')).map((f) => `fhir/synthea-smart/${f}`),
  ...fs.readdirSync(path.join(SHARED_DATA, 'fhir/synthea-hiv')).filter((f) => !/Information\d+\.json$/.test(f)).map((f) => `fhir/synthea-hiv/${f}`),
  ...fs.readdirSync(path.join(SHARED_DATA, 'fhir/inferno-uscore')).map((f) => `fhir/inferno-uscore/${f}`),
].sort();

let svc: TestService;
let server: SandboxServer;
let cm: string;
let endpointId: string;

beforeAll(async () => {
  svc = await startTestService({ PULL_JOB_BACKOFF_MS: '50' }, FAST_CLIENT);
  server = await startSandboxServer({ name: 'real-data', auth: 'none', maxCount: 200 });
  // The newer Synthea patients refer to hospitals and clinicians by identifier: load those first.
  for (const ref of ['hospitalInformation1633536936158.json', 'practitionerInformation1633536936158.json']) {
    await server.load(readBundle(`fhir/synthea-hiv/${ref}`));
  }
  const admin = await svc.token('admin');
  cm = await svc.token('case_manager');
  endpointId = ((await (
    await svc.request('POST', '/api/endpoints', { token: admin, body: { name: 'Real data', baseUrl: server.baseUrl, auth: { type: 'none' }, allowInsecureHttp: true, maxRequestsPerSecond: 1000 } })
  ).json()) as { id: string }).id;
}, 120_000);

afterAll(async () => {
  await Promise.all([svc.stop(), server.stop()]);
});

it.each(PATIENTS)('%s: pulled, assembled, valid, resolvable, balanced', async (file) => {
  const bundle = readBundle(file);
  const loaded = await server.load(bundle);
  const patientId = loaded.ids.Patient?.[0] ?? '';
  const intake = intakeFor(patientOf(bundle));
  // This test is about assembly, not eligibility: an out-of-area address and a guardian (some of
  // these patients are adults, or live where the program does not serve).
  const body = {
    ...intake,
    patient: { ...intake.patient, address: { line: ['1 Main St'], city: 'Pueblo', state: 'CO', postalCode: '81003', country: 'US' } },
    requester: { ...intake.requester, relationship: 'GUARD' },
  };
  const opened = (await (await svc.request('POST', '/api/cases', { token: cm, body })).json()) as { id: string; status: string };
  expect(opened.status).toBe('submitted');
  const caseId = opened.id;
  const source = await svc.request('POST', `/api/cases/${caseId}/sources`, { token: cm, body: { endpointId, patient: { id: patientId } } });
  expect(source.status).toBe(201);
  const started = await svc.request('POST', `/api/cases/${caseId}/pulls`, { token: cm, body: {} });
  if (started.status !== 202) throw new Error(`pull not started: ${await started.text()}`);
  await bundleAssembled(svc, caseId, cm);
  const assembled = (await (await svc.request('GET', `/api/cases/${caseId}/bundle`, { token: cm })).json()) as Bundle;
  expect(assembled.type).toBe('document');
  expect(unresolvedReferences(assembled)).toEqual([]);
  expect(bundleValidationErrors(assembled)).toEqual([]);
  const report = (await (await svc.request('GET', `/api/cases/${caseId}/completeness`, { token: cm })).json()) as { totals: { balanced: boolean; pulled: number } };
  expect(report.totals.balanced).toBe(true);
  expect(report.totals.pulled).toBeGreaterThan(10);
}, 120_000);
