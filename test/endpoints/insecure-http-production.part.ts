/**
 * In production (NODE_ENV=production) no FHIR endpoint and no webhook subscriber is registered, or
 * changed, with `allowInsecureHttp`: a 400 names the field and nothing is stored. The real service in
 * production mode on real PostgreSQL and Redis, with a sandbox EHR on loopback http (what the flag is for).
 */
import { randomUUID } from 'node:crypto';
import { insertEndpoint } from '../../src/endpoints/endpoint-repository';
import { startSandboxServer, type SandboxServer } from '../../src/sandbox/sandbox-server';
import { insertWebhook } from '../../src/notify/webhook-repository';
import { SecretBox } from '../../src/security/secret-box';
import { startWebhookReceiver } from '../notify/webhook-support';
import { openCaseIn } from '../support/opinion-case';
import { eventually, startTestService, type TestService } from '../support/service';

let svc: TestService;
let ehr: SandboxServer;
let admin: string;

beforeAll(async () => {
  [svc, ehr] = await Promise.all([
    startTestService({ NODE_ENV: 'production', SECRETS_KEY: Buffer.alloc(32, 9).toString('base64') }),
    startSandboxServer({ name: 'care-team-a', auth: 'none' }),
  ]);
  admin = await svc.token('admin', 'admin-1');
});
afterAll(async () => {
  await Promise.all([svc.stop(), ehr.stop()]);
});

interface Problem {
  detail: string;
  errors: { field: string; pointer: string }[];
}

async function expectRefused(res: Response): Promise<void> {
  expect(res.status).toBe(400);
  const problem = (await res.json()) as Problem;
  expect(problem.errors).toEqual([expect.objectContaining({ field: 'allowInsecureHttp', pointer: '#/allowInsecureHttp' })]);
  expect(problem.detail).toMatch(/^allowInsecureHttp: not allowed in production/);
}

it('runs in production mode', () => {
  expect(svc.config.production).toBe(true);
});

describe('endpoint registration', () => {
  it('refuses allowInsecureHttp with a 400 naming it (an http sandbox URL or an https one), and registers nothing', async () => {
    for (const baseUrl of [ehr.baseUrl, 'https://ehr.example.org/fhir']) {
      const res = await svc.request('POST', '/api/endpoints', { token: admin, body: { name: 'Sandbox', baseUrl, auth: { type: 'none' }, allowInsecureHttp: true } });
      await expectRefused(res);
    }
    const list = await svc.request('GET', '/api/endpoints', { token: admin });
    expect(((await list.json()) as { items: unknown[] }).items).toEqual([]);
    // Without the flag the http URL is refused by the outbound policy, as before.
    const plain = await svc.request('POST', '/api/endpoints', { token: admin, body: { name: 'Sandbox', baseUrl: ehr.baseUrl, auth: { type: 'none' } } });
    expect(plain.status).toBe(400);
    expect(((await plain.json()) as Problem).errors.map((e) => e.field)).toEqual(['baseUrl']);
  });

  it('refuses a PATCH that turns it on; other changes of an https endpoint go through', async () => {
    // An https endpoint as registration stores it (no DNS here for the outbound check of a public host).
    const id = randomUUID();
    await insertEndpoint(svc.service.db, {
      id, name: 'EHR', baseUrl: 'https://ehr.example.org/fhir', authType: 'none', clientId: null, scope: null, sealedSecret: null,
      maxRequestsPerSecond: 10, maxConcurrency: 4, allowInsecureHttp: false, rebaseNextLinks: false, inboundSubject: null,
    });
    await expectRefused(await svc.request('PATCH', `/api/endpoints/${id}`, { token: admin, body: { allowInsecureHttp: true } }));
    const renamed = await svc.request('PATCH', `/api/endpoints/${id}`, { token: admin, body: { name: 'EHR (main campus)' } });
    expect(renamed.status).toBe(200);
    expect(await renamed.json()).toMatchObject({ name: 'EHR (main campus)', allowInsecureHttp: false });
  });
});

describe('webhook registration', () => {
  it('refuses allowInsecureHttp with a 400 naming it, and registers nothing', async () => {
    const res = await svc.request('POST', '/api/webhooks', {
      token: admin,
      body: { url: 'http://127.0.0.1:9/hook', secret: 'w'.repeat(40), events: ['records.complete'], allowInsecureHttp: true },
    });
    await expectRefused(res);
    const list = await svc.request('GET', '/api/webhooks', { token: admin });
    expect(((await list.json()) as { items: unknown[] }).items).toEqual([]);
  });
});

describe('rows stored with allowInsecureHttp before production refused it', () => {
  it('holds such an endpoint to the outbound policy all the same: its requests are refused, saying why', async () => {
    const id = randomUUID();
    await insertEndpoint(svc.service.db, {
      id, name: 'Old sandbox row', baseUrl: ehr.baseUrl, authType: 'none', clientId: null, scope: null, sealedSecret: null,
      maxRequestsPerSecond: 10, maxConcurrency: 4, allowInsecureHttp: true, rebaseNextLinks: false, inboundSubject: null,
    });
    const before = ehr.requestCount();
    const refreshed = await svc.request('POST', `/api/endpoints/${id}/capabilities`, { token: admin });
    expect(refreshed.status).toBe(200);
    expect(((await refreshed.json()) as { capabilitiesError: string | null }).capabilitiesError).toMatch(/http/i);
    expect(ehr.requestCount()).toBe(before);
  });

  it('holds such a webhook subscriber to it too: its events are refused for good, and nothing is sent', async () => {
    const receiver = await startWebhookReceiver();
    try {
      const id = randomUUID();
      await insertWebhook(svc.service.db, {
        id, url: `${receiver.url}/old-row`, sealedSecret: new SecretBox(svc.config.secretsKey).seal('s'.repeat(40), id),
        events: ['transfer.requested'], allowInsecureHttp: true, createdBy: 'before-production',
      });
      const cm = await svc.token('case_manager', 'cm-prod');
      const caseId = await openCaseIn(svc, cm, 'report_signed');
      const asked = await svc.request('POST', `/api/cases/${caseId}/transfer-request`, { token: cm, body: { reason: 'Moving', destination: { organization: 'Elsewhere' } } });
      expect(asked.status).toBe(201);
      const delivery = await eventually(
        async () => (await svc.service.db.query<{ state: string; last_error: string | null }>('SELECT state, last_error FROM webhook_deliveries WHERE webhook_id = $1', [id])).rows[0],
        (d) => d?.state === 'failed',
        30_000,
      );
      expect(delivery?.last_error).toMatch(/https/i);
      expect(receiver.received).toEqual([]);
    } finally {
      await receiver.close();
    }
  });
});
