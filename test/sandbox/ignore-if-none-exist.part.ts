/**
 * The `ignore-if-none-exist` fault: a server that does not evaluate conditional creates
 * (https://hl7.org/fhir/R4/http.html#ccreate) creates a second resource where an honoured
 * `If-None-Exist` answers with the one already there, both as a plain create and in a transaction.
 */
import type { Bundle, DiagnosticReport } from 'fhir/r4';
import { parseFaultSpec, startSandboxServer, type SandboxServer } from '../../src/sandbox';

let server: SandboxServer;
const IDENTIFIER = 'urn:example:reports|r-1';
const report: DiagnosticReport = { resourceType: 'DiagnosticReport', status: 'final', code: { text: 'a report' }, identifier: [{ system: 'urn:example:reports', value: 'r-1' }] };

beforeAll(async () => {
  server = await startSandboxServer({ name: 'conditional-create', auth: 'none' });
});

afterAll(async () => {
  await server.stop();
});

beforeEach(async () => {
  server.faults.clear();
  server.reset();
  await server.load([report]);
});

const json = { 'content-type': 'application/fhir+json', accept: 'application/fhir+json' };

async function createIfNoneExist(): Promise<number> {
  const res = await fetch(`${server.baseUrl}/DiagnosticReport`, { method: 'POST', headers: { ...json, 'if-none-exist': `identifier=${IDENTIFIER}` }, body: JSON.stringify(report) });
  await res.arrayBuffer();
  return res.status;
}

async function transactionIfNoneExist(): Promise<string | undefined> {
  const bundle: Bundle = {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [{ fullUrl: 'urn:uuid:7f1c2b9e-0d4a-4e55-9a3e-1b2c3d4e5f60', resource: report, request: { method: 'POST', url: 'DiagnosticReport', ifNoneExist: `identifier=${IDENTIFIER}` } }],
  };
  const res = await fetch(server.baseUrl, { method: 'POST', headers: json, body: JSON.stringify(bundle) });
  expect(res.status).toBe(200);
  return ((await res.json()) as Bundle).entry?.[0]?.response?.status;
}

/** DiagnosticReports written over HTTP (the seeded one is not counted). */
const reportsWritten = (): number => server.writtenResources('DiagnosticReport').length;

test('without the fault, If-None-Exist answers with the report already there', async () => {
  expect(await createIfNoneExist()).toBe(200);
  expect(await transactionIfNoneExist()).toMatch(/^200/);
  expect(reportsWritten()).toBe(0);
});

test('with it, a conditional create and a conditional transaction entry each create another copy', async () => {
  const rule = server.faults.add({ match: 'POST *', action: { kind: 'ignore-if-none-exist' } });
  expect(await createIfNoneExist()).toBe(201);
  expect(await transactionIfNoneExist()).toMatch(/^201/);
  expect(reportsWritten()).toBe(2);
  expect(server.faults.rule(rule)?.fired).toBe(2);
});

test('is written on the command line as ignore-if-none-exist', () => {
  expect(parseFaultSpec('referring-ehr:POST *:ignore-if-none-exist')).toEqual({ server: 'referring-ehr', rule: { match: 'POST *', action: { kind: 'ignore-if-none-exist' } } });
});
