/**
 * Outbound requests through an HTTP CONNECT proxy (`OUTBOUND_PROXY_URL`): a real proxy on loopback in
 * front of the real sandbox FHIR server. The SSRF rules hold through the proxy; listed hosts go direct.
 */
import type { Redis } from 'ioredis';
import { HttpTransport } from '../../src/fhir/http-transport';
import { bypassesProxy, outboundProxy } from '../../src/fhir/outbound-proxy';
import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { startConnectProxy, type ConnectProxy } from '../support/connect-proxy';
import { startTestService } from '../support/service';
import { makeClient } from './support/client';
import { testRedis, type TestRedis } from './support/redis';

let env: TestRedis;
let redis: Redis;
let ehr: SandboxServer;
let proxy: ConnectProxy;

beforeAll(async () => {
  env = testRedis('proxy');
  redis = env.connect();
  [ehr, proxy] = await Promise.all([startSandboxServer({ name: 'behind-proxy', auth: 'none' }), startConnectProxy()]);
  await ehr.load([{ resourceType: 'Patient', id: 'p1', name: [{ family: 'Quill', given: ['Ada'] }], birthDate: '2016-01-02' }]);
});
afterAll(async () => {
  await Promise.all([ehr.stop(), proxy.stop()]);
  await env.cleanup();
});
beforeEach(() => {
  proxy.tunnels.length = 0;
});

const ehrAuthority = (): string => new URL(ehr.baseUrl).host;

it('reads an EHR through the proxy: every connection is a CONNECT tunnel to the EHR', async () => {
  const { client } = makeClient(redis, env.prefix, ehr.baseUrl, {}, { proxy: outboundProxy(proxy.url, undefined) });
  try {
    const patient = await client.read('Patient', 'p1');
    expect(patient).toMatchObject({ resourceType: 'Patient', id: 'p1' });
    expect(proxy.tunnels.length).toBeGreaterThan(0);
    expect(new Set(proxy.tunnels)).toEqual(new Set([ehrAuthority()]));
  } finally {
    await client.close();
  }
});

it('reaches the hosts OUTBOUND_NO_PROXY lists directly', async () => {
  const { client } = makeClient(redis, env.prefix, ehr.baseUrl, {}, { proxy: outboundProxy(proxy.url, 'example.org, 127.0.0.1') });
  try {
    expect(await client.read('Patient', 'p1')).toMatchObject({ id: 'p1' });
    expect(proxy.tunnels).toEqual([]);
  } finally {
    await client.close();
  }
});

it('checks the target against the address policy before tunnelling: a name resolving to a private address never reaches the proxy', async () => {
  const transport = new HttpTransport({
    allowInsecureHttp: true,
    proxy: outboundProxy(proxy.url, undefined),
    resolve: async () => [{ address: '10.1.2.3', family: 4 }],
  });
  try {
    const request = { method: 'GET' as const, url: new URL('http://ehr.example.test/fhir/metadata'), headers: {}, timeoutMs: 5000 };
    await expect(transport.buffered(request, 1024)).rejects.toMatchObject({ code: 'ERR_FHIR_ADDRESS_REFUSED' });
    expect(proxy.tunnels).toEqual([]);
  } finally {
    await transport.close();
  }
});

it('sends the credentials of the proxy URL; a proxy refusing the tunnel fails the request', async () => {
  const guarded = await startConnectProxy({ credentials: 'bridge:s3cret' });
  try {
    const ok = makeClient(redis, env.prefix, ehr.baseUrl, {}, { proxy: outboundProxy(guarded.url, undefined) });
    expect(await ok.client.read('Patient', 'p1')).toMatchObject({ id: 'p1' });
    await ok.client.close();
    const refused = makeClient(redis, env.prefix, ehr.baseUrl, { timeoutMs: 2000 }, { proxy: outboundProxy(guarded.url.replace('bridge:s3cret@', ''), undefined), retry: { maxAttempts: 1 } });
    await expect(refused.client.read('Patient', 'p1')).rejects.toThrow('the outbound proxy refused the tunnel (HTTP 407)');
    await refused.client.close();
    expect(guarded.tunnels).toEqual([ehrAuthority()]);
  } finally {
    await guarded.stop();
  }
});

it('matches OUTBOUND_NO_PROXY entries by host and domain', () => {
  expect(bypassesProxy('ehr.hospital.org', ['hospital.org'])).toBe(true);
  expect(bypassesProxy('ehr.hospital.org', ['.hospital.org'])).toBe(true);
  expect(bypassesProxy('hospital.org', ['.hospital.org'])).toBe(true);
  expect(bypassesProxy('evilhospital.org', ['hospital.org'])).toBe(false);
  expect(bypassesProxy('[::1]', ['::1'])).toBe(true);
  expect(bypassesProxy('anything.example', ['*'])).toBe(true);
  expect(bypassesProxy('anything.example', [])).toBe(false);
});

it('is configured by OUTBOUND_PROXY_URL: the service reads an endpoint\'s capabilities through it', async () => {
  const svc = await startTestService({ OUTBOUND_PROXY_URL: proxy.url });
  try {
    const admin = await svc.token('admin');
    const res = await svc.request('POST', '/api/endpoints', { token: admin, body: { name: 'Behind the proxy', baseUrl: ehr.baseUrl, auth: { type: 'none' }, allowInsecureHttp: true } });
    expect(res.status).toBe(201);
    expect(((await res.json()) as { capabilitiesError: string | null }).capabilitiesError).toBeNull();
    expect(proxy.tunnels).toContain(ehrAuthority());
  } finally {
    await svc.stop();
  }
});
