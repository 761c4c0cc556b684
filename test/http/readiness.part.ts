import { startOwnRedis, type OwnRedis } from '../../drills/support/redis-server';
import { eventually, startTestService, type TestService } from '../support/service';

/**
 * /readyz follows what the API needs to serve: PostgreSQL and the schema of this release. Redis
 * (queues, caches) stopped leaves it ready, Redis reported `unavailable` and listed under `degraded`;
 * a database a newer release migrated makes it unready, naming the schema. Real PostgreSQL, and a
 * private redis-server that the test stops.
 */
describe('readiness', () => {
  let redis: OwnRedis;
  let svc: TestService;
  beforeAll(async () => {
    redis = await startOwnRedis();
    svc = await startTestService({ REDIS_URL: redis.url, ROLE: 'api' });
  });
  afterAll(async () => {
    await svc.stop();
    await redis.stop();
  });

  it('stays ready while Redis is stopped, reporting redis as degraded; /healthz stays 200', async () => {
    await eventually(async () => (await svc.request('GET', '/readyz')).json(), (body) => (body as { checks: Record<string, string> }).checks.redis === 'ok', 10_000);
    await redis.stop();
    const ready = await svc.request('GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', checks: { database: 'ok', schema: 'ok', redis: 'unavailable' }, degraded: ['redis'] });
    expect((await svc.request('GET', '/healthz')).status).toBe(200);
  });

  it('is unready, naming the schema, once a newer release has migrated the database', async () => {
    // The schema check is cached for 30 s: a fresh service, asked for the first time after the change.
    const other = await startTestService({ REDIS_URL: 'redis://127.0.0.1:1', ROLE: 'api' });
    try {
      await other.service.db.query(`INSERT INTO schema_migrations (version, name, checksum) VALUES (9999, 'from-a-newer-release', 'x')`);
      const ready = await other.request('GET', '/readyz');
      expect(ready.status).toBe(503);
      expect(await ready.json()).toEqual({
        status: 'unavailable',
        detail: 'Not answering: schema',
        checks: { database: 'ok', schema: 'unavailable', redis: 'unavailable' },
        degraded: ['redis'],
      });
    } finally {
      await other.stop();
    }
  });
});
