import type { Redis } from 'ioredis';
import { NPI_SYSTEM } from '../../src/cases/fhir-codes';
import { referringPhysician } from '../../src/delivery/delivery-runner';
import { referredIntake } from '../../src/fixtures/fixture-child-intake';
import { isPermanentFhirError } from '../../src/fhir';
import { makeClient } from '../fhir/support/client';
import { outcome, sendJson, type TestServer } from '../fhir/support/http-server';
import type { TestRedis } from '../fhir/support/redis';
import { startClientBench } from '../support/client-bench';
import { startForFile } from '../support/for-file';

/**
 * The referring physician's Practitioner at the recipient is an optional look-up (the Communication's
 * recipient): a recipient that does not grant, or refuses, the search gets the physician named by NPI
 * (a logical reference) instead of a delivery failed for good; a passing failure is still retried.
 */
let env: TestRedis;
let redis: Redis;
let server: TestServer;

const intake = referredIntake();
const { name, npi } = intake.referringPhysician;
const byNpi = { type: 'Practitioner', identifier: { system: NPI_SYSTEM, value: npi }, display: name };

const practitioners = (ids: string[]) => ({
  resourceType: 'Bundle',
  type: 'searchset',
  entry: ids.map((id) => ({ resource: { resourceType: 'Practitioner', id, identifier: [{ system: NPI_SYSTEM, value: npi }] }, search: { mode: 'match' } })),
});

startForFile(() => startClientBench('referring-physician'), (bench) => ({ env, redis, server } = bench));

/** The physician as looked up at a recipient answering the Practitioner search with `status` (and `body`), and the requests it got. */
async function lookUp(scope: string | undefined, status: number, body: unknown = outcome(status === 403 ? 'forbidden' : 'not-supported')) {
  server.handle((_req, res) => sendJson(res, status, body));
  const before = server.requests.length;
  const { client } = makeClient(redis, env.prefix, server.url);
  try {
    const physician = await referringPhysician(client, intake, scope);
    return { physician, requests: server.requests.slice(before).map((r) => `${r.method} ${r.url.split('?')[0] ?? ''}`) };
  } finally {
    await client.close();
  }
}

it('takes the Practitioner found once by NPI', async () => {
  expect((await lookUp(undefined, 200, practitioners(['dr-1']))).physician).toEqual({ reference: 'Practitioner/dr-1', display: name });
  expect((await lookUp('system/*.read system/DiagnosticReport.write', 200, practitioners(['dr-1']))).physician).toEqual({ reference: 'Practitioner/dr-1', display: name });
  expect((await lookUp('system/Practitioner.rs system/DiagnosticReport.c', 200, practitioners(['dr-1']))).physician).toEqual({ reference: 'Practitioner/dr-1', display: name });
  // Not there exactly once: by NPI.
  expect((await lookUp(undefined, 200, practitioners(['dr-1', 'dr-2']))).physician).toEqual(byNpi);
});

it.each([
  [403, 'the grant leaves Practitioners out'],
  [400, 'the identifier is not a search parameter there'],
  [404, 'there is no Practitioner endpoint'],
  [501, 'the server does not implement the search'],
])('names the physician by NPI when the recipient refuses the look-up with %i (%s)', async (status) => {
  const { physician, requests } = await lookUp(undefined, status);
  expect(physician).toEqual(byNpi);
  expect(requests).toEqual(['GET /Practitioner']);
});

it('does not ask where the scope granted does not let this client search Practitioners', async () => {
  for (const scope of ['system/Patient.read system/DiagnosticReport.write system/Communication.write', 'system/Practitioner.r system/DiagnosticReport.c', 'system/Practitioner.write']) {
    const { physician, requests } = await lookUp(scope, 200, practitioners(['dr-1']));
    expect({ scope, physician, requests }).toEqual({ scope, physician: byNpi, requests: [] });
  }
});

it('throws a passing failure (5xx), for the delivery to be retried', async () => {
  const failing = lookUp(undefined, 503, outcome('transient'));
  await expect(failing).rejects.toThrow(/503/);
  expect(isPermanentFhirError(await failing.catch((err: unknown) => err))).toBe(false);
});

it('names the physician without a reference, asking nothing, when the intake has no NPI', async () => {
  server.handle((_req, res) => sendJson(res, 200, practitioners(['dr-1'])));
  const before = server.requests.length;
  const { client } = makeClient(redis, env.prefix, server.url);
  try {
    expect(await referringPhysician(client, { ...intake, referringPhysician: { ...intake.referringPhysician, npi: undefined } } as typeof intake, undefined)).toEqual({ display: name });
  } finally {
    await client.close();
  }
  expect(server.requests.length).toBe(before);
});
