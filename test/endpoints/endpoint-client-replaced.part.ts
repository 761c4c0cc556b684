import { randomBytes, randomUUID } from 'node:crypto';
import IORedis from 'ioredis';
import type { Patient } from 'fhir/r4';
import { EndpointClients, MAX_CLIENT_REPLACEMENTS } from '../../src/endpoints/endpoint-clients';
import type { EndpointRow } from '../../src/endpoints/endpoint-repository';
import { ClientRetiredError, type FhirEndpointClient } from '../../src/fhir';
import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { SecretBox } from '../../src/security/secret-box';
import { fixtureBundle, fixturePatientId } from '../support/fixture-child';
import { TEST_REDIS_URL } from '../support/redis-url';

/**
 * `EndpointClients.withCurrentClient`: an endpoint edited while work uses its client (the old client
 * refuses what it has not sent yet) starts the work again with the new client, instead of failing
 * it and spending a retry of the job. Real Redis (limiter, breaker) and a real sandbox EHR.
 */
const secrets = new SecretBox(Buffer.alloc(32, 1));
let redis: IORedis;
let server: SandboxServer;
let clients: EndpointClients;
let patientId: string;

beforeAll(async () => {
  redis = new IORedis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
  clients = new EndpointClients(redis, `sobtest-${randomBytes(4).toString('hex')}:fhir:`);
  server = await startSandboxServer({ name: 'care-team-a', auth: 'none' });
  await server.load(fixtureBundle('care-team-a'));
  patientId = fixturePatientId('care-team-a');
});

afterAll(async () => {
  await clients.closeAll();
  await server.stop();
  redis.disconnect();
});

/** An endpoint registration as stored. */
function registration(id: string, updatedAt: Date): EndpointRow {
  return {
    id,
    name: 'care-team-a',
    baseUrl: server.baseUrl,
    authType: 'none',
    clientId: null,
    scope: null,
    sealedSecret: null,
    maxRequestsPerSecond: 1000,
    maxConcurrency: 1,
    allowInsecureHttp: true,
    rebaseNextLinks: false,
    inboundSubject: null,
    tokenEndpoint: null,
    capabilities: null,
    capabilitiesFetchedAt: null,
    capabilitiesError: null,
    createdAt: new Date(0),
    updatedAt,
  };
}

it('starts the work again with the new client when the endpoint is edited between two of its requests', async () => {
  const id = randomUUID();
  let current = registration(id, new Date(1_000));
  const used: FhirEndpointClient[] = [];
  const before = server.requestCount();
  const [first, second] = await clients.withCurrentClient(async () => current, secrets, async (client, endpoint) => {
    used.push(client);
    expect(endpoint).toBe(current);
    const first = await client.read<Patient>('Patient', patientId);
    if (used.length === 1) {
      // The admin's edit, after the first read: a new registration, so a new client; the old one is closed.
      current = registration(id, new Date(2_000));
      expect(clients.forEndpoint(current, secrets)).not.toBe(client);
    }
    return [first, await client.read<Patient>('Patient', patientId)];
  });
  expect([first.id, second.id]).toEqual([patientId, patientId]);
  expect(used).toHaveLength(2);
  expect(used[1]).toBe(clients.forEndpoint(current, secrets));
  // The retired client's second read was never sent: one read before the edit, two after it.
  expect(server.requestCount() - before).toBe(3);
});

it('gives up after MAX_CLIENT_REPLACEMENTS replacements in a row, with the refusal', async () => {
  const id = randomUUID();
  let edits = 0;
  let current = registration(id, new Date(1_000));
  const run = clients.withCurrentClient(async () => current, secrets, async (client) => {
    edits += 1;
    current = registration(id, new Date(1_000 + edits));
    clients.forEndpoint(current, secrets);
    return client.read<Patient>('Patient', patientId);
  });
  await expect(run).rejects.toBeInstanceOf(ClientRetiredError);
  expect(edits).toBe(MAX_CLIENT_REPLACEMENTS + 1);
});
