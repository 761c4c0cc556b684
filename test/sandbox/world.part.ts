/**
 * The sandbox world (care-team-a, care-team-b, referring-ehr): fixture seeding when a fixture exists,
 * one SMART client registered everywhere with its key kept in the state directory, offset and token
 * paging, faults from options; and the CLI's argument parsing.
 */
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Bundle } from '@medplum/fhirtypes';
import { parseFaultSpec, requestAccessToken, startSandboxWorld, WORLD_SERVER_NAMES } from '../../src/sandbox';
import { parseSandboxCliArgs } from '../../src/sandbox/cli-args';

let workDir: string;

beforeAll(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'sandbox-world-'));
});

afterAll(async () => {
  await rm(workDir, { recursive: true, force: true });
});

test('starts three servers, seeds from fixtures that exist, registers one client everywhere', async () => {
  const fixturesDir = path.join(workDir, 'fixtures');
  const stateDir = path.join(workDir, 'state');
  await rm(fixturesDir, { recursive: true, force: true });
  await mkdir(fixturesDir, { recursive: true });
  const fixture: Bundle = {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      { fullUrl: 'urn:uuid:0b6e2f9e-2f6e-4d6c-9a51-111111111111', resource: { resourceType: 'Patient', id: 'child-1' }, request: { method: 'PUT', url: 'Patient/child-1' } },
      ...Array.from({ length: 5 }, (_, i) => ({
        resource: { resourceType: 'Observation' as const, id: `obs-${i}`, status: 'final' as const, code: { text: 'x' }, subject: { reference: 'Patient/child-1' } },
        request: { method: 'PUT' as const, url: `Observation/obs-${i}` },
      })),
    ],
  };
  await writeFile(path.join(fixturesDir, 'care-team-b.json'), JSON.stringify(fixture));

  const world = await startSandboxWorld({ fixturesDir, stateDir, faults: [parseFaultSpec('care-team-a:GET /Patient*:503:nth=1')] });
  try {
    expect(Object.keys(world.servers)).toEqual([...WORLD_SERVER_NAMES]);
    expect(world.careTeamA.paging).toBe('offset');
    expect(world.careTeamB.paging).toBe('token');
    expect(world.seeded['care-team-b']).toMatchObject({ total: 6, counts: { Patient: 1, Observation: 5 } });
    expect(world.seeded['care-team-a']).toBeUndefined();
    expect((await stat(world.client.privateKeyPath)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(world.client.jwksPath, 'utf8'))).toEqual(world.client.jwks);

    const totals: Record<string, number | undefined> = {};
    for (const server of Object.values(world.servers)) {
      const token = await requestAccessToken({ clientId: world.client.clientId, privateJwk: world.client.privateJwk, tokenUrl: server.tokenUrl, scope: 'system/*.rs' });
      const headers = { authorization: `Bearer ${token.access_token}` };
      if (server === world.careTeamA) {
        expect((await fetch(`${server.baseUrl}/Patient`, { headers })).status).toBe(503);
      }
      const bundle = (await (await fetch(`${server.baseUrl}/Observation?patient=child-1&_count=2`, { headers })).json()) as Bundle;
      totals[server.name] = bundle.total;
      if (server === world.careTeamB) {
        expect(bundle.link?.find((link) => link.relation === 'next')?.url).toContain('_getpages=');
      }
    }
    expect(totals).toEqual({ 'care-team-a': 0, 'care-team-b': 5, 'referring-ehr': 0 });
  } finally {
    await world.stop();
  }

  const again = await startSandboxWorld({ fixturesDir: path.join(workDir, 'none'), stateDir });
  try {
    expect(again.client.kid).toBe(world.client.kid);
    expect(again.seeded['care-team-b']).toBeUndefined();
  } finally {
    await again.stop();
  }
});

test('refuses a fault for a server that does not exist', async () => {
  await expect(startSandboxWorld({ stateDir: path.join(workDir, 'state'), fixturesDir: workDir, faults: [parseFaultSpec('care-team-z:GET /x:500')] })).rejects.toThrow(
    /unknown server/
  );
});

describe('CLI arguments', () => {
  test('the documented flags', () => {
    const faultsFile = JSON.stringify([{ server: '*', match: 'GET /Binary/*', action: { kind: 'latency', ms: 50 } }]);
    const command = parseSandboxCliArgs(
      ['--port-base', '8100', '--auth', 'none', '--latency', '20', '--seed', '7', '--fault', 'care-team-a:GET /Observation*:429:retryAfter=2:nth=3', '--faults', 'faults.json'],
      () => faultsFile
    );
    expect(command).toEqual({
      kind: 'start',
      options: {
        portBase: 8100,
        auth: 'none',
        latencyMs: 20,
        seed: 7,
        fixturesDir: undefined,
        stateDir: undefined,
        faults: [
          { server: 'care-team-a', rule: { match: 'GET /Observation*', action: { kind: 'rate-limit', retryAfterSeconds: 2 }, nth: 3 } },
          { server: '*', rule: { match: 'GET /Binary/*', action: { kind: 'latency', ms: 50 } } },
        ],
      },
    });
    expect(parseSandboxCliArgs(['--help'])).toEqual({ kind: 'help' });
  });

  test('rejects bad values', () => {
    expect(() => parseSandboxCliArgs(['--auth', 'basic'])).toThrow(/--auth/);
    expect(() => parseSandboxCliArgs(['--latency', 'fast'])).toThrow(/--latency/);
    expect(() => parseSandboxCliArgs(['--nope'])).toThrow();
  });
});
