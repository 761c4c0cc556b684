import { startTestService, type TestService } from '../support/service';

describe('readiness names what does not answer', () => {
  let svc: TestService;
  beforeAll(async () => {
    // A port where nothing listens: Redis is "down" for this service instance.
    svc = await startTestService({ REDIS_URL: 'redis://127.0.0.1:1', ROLE: 'api' });
  });
  afterAll(async () => {
    await svc.stop();
  });

  it('answers 503 naming redis, while /healthz stays 200', async () => {
    const ready = await svc.request('GET', '/readyz');
    expect(ready.status).toBe(503);
    const body = (await ready.json()) as { status: string; detail: string; checks: Record<string, string> };
    expect(body.status).toBe('unavailable');
    expect(body.detail).toBe('Not answering: redis');
    expect(body.checks.database).toBe('ok');
    expect(body.checks.redis).toMatch(/^unavailable/);
    expect((await svc.request('GET', '/healthz')).status).toBe(200);
  });
});
