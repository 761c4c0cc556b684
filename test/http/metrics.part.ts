import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { QUEUES } from '../../queues/names';
import { QueueDepth } from '../../queues/queue-depth';
import IORedis from 'ioredis';
import { RedisCircuitBreaker } from '../../src/fhir';
import { createMetrics } from '../../src/http/metrics';
import { startSandboxServer } from '../../src/sandbox';
import { startForFile } from '../support/for-file';
import { registerOpenEndpoint } from '../support/sandbox-case';
import { bullConnectionOptions } from '../../src/redis';
import { startTestService, type TestService } from '../support/service';
import { sampleIntake } from '../support/intake';
import { insertPullTask } from '../support/pull-task';
import { startOwnRedis } from '../../drills/support/redis-server';
import { createTestDatabase } from '../support/postgres';

let svc: TestService;
startForFile(() => startTestService({ ROLE: 'api' }), (started) => (svc = started));

it('exposes route counters by pattern and status, work by state, and no ids or PHI', async () => {
  const cm = await svc.token('case_manager');
  const created = (await (await svc.request('POST', '/api/cases', { token: cm, body: sampleIntake() })).json()) as { id: string };
  expect((await svc.request('GET', `/api/cases/${created.id}`, { token: cm })).status).toBe(200);
  expect((await svc.request('GET', '/api/cases/00000000-0000-4000-8000-000000000000', { token: cm })).status).toBe(404);
  const pullId = randomUUID();
  // Queued ten minutes ago, and no worker has started it (this service runs the API role only).
  await svc.service.db.query(`INSERT INTO pulls (id, case_id, state, requested_by, created_at) VALUES ($1, $2, 'queued', 'metrics-test', now() - interval '10 minutes')`, [
    pullId, created.id,
  ]);
  // Two unfinished tasks: one queued, one waiting for a paused endpoint.
  const base = { caseId: created.id, pullId, baseUrl: 'https://ehr.example.org/fhir', resourceType: 'Observation', path: 'Observation' };
  await insertPullTask(svc.service.db, { ...base, name: 'metrics-a' });
  const waiting = await insertPullTask(svc.service.db, { ...base, name: 'metrics-b' });
  await svc.service.db.query(`UPDATE pull_tasks SET state = 'running', waiting_until = now() + interval '1 minute' WHERE id = $1`, [waiting.id]);

  const res = await svc.request('GET', '/metrics');
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
  const text = await res.text();
  expect(text).toMatch(/sob_http_requests_total\{method="POST",route="\/api\/cases",status="201"\} 1/);
  expect(text).toMatch(/sob_http_requests_total\{method="GET",route="\/api\/cases\/:id",status="200"\} 1/);
  expect(text).toMatch(/sob_http_requests_total\{method="GET",route="\/api\/cases\/:id",status="404"\} 1/);
  expect(text).toMatch(/sob_http_request_duration_seconds_count\{method="POST",route="\/api\/cases"\} 1/);
  expect(text).toMatch(/sob_work_items\{table="pulls",state="queued"\} 1/);
  expect(text).toMatch(/sob_work_items\{table="pull_tasks",state="queued"\} 1/);
  expect(text).toMatch(/sob_work_items\{table="pull_tasks",state="waiting"\} 1/);
  expect(text).toMatch(/process_cpu_user_seconds_total/);
  // The oldest unfinished pull's age per state (0 with none), and each source read at this scrape.
  const queuedAge = Number(/sob_pull_oldest_unfinished_seconds\{state="queued"\} ([\d.e+]+)/.exec(text)?.[1]);
  expect(queuedAge).toBeGreaterThanOrEqual(600);
  expect(queuedAge).toBeLessThan(900);
  expect(text).toContain('sob_pull_oldest_unfinished_seconds{state="running"} 0');
  expect(text).toContain('sob_metrics_collect_success{source="database"} 1');
  expect(text).toContain('sob_metrics_collect_success{source="redis"} 1');
  expect(text).not.toContain(created.id);
  expect(text).not.toContain(sampleIntake().patient.name.family);
});

it('exposes the jobs of every queue by state, read from Redis at scrape time', async () => {
  // This service runs the API role only: a job put on a queue stays there for the scrape to count.
  const webhooks = new Queue(QUEUES.sendWebhook, { connection: bullConnectionOptions(svc.config.redisUrl), prefix: svc.config.queuePrefix });
  try {
    await webhooks.add('metrics-test', { n: 1 }, { delay: 60_000 });
    await webhooks.add('metrics-test', { n: 2 });
    const text = await (await svc.request('GET', '/metrics')).text();
    expect(text).toMatch(/sob_queue_jobs\{queue="send-webhook",state="delayed"\} 1/);
    expect(text).toMatch(/sob_queue_jobs\{queue="send-webhook",state="waiting"\} 1/);
    for (const queue of Object.values(QUEUES)) expect(text).toContain(`sob_queue_jobs{queue="${queue}",state="failed"}`);
  } finally {
    await webhooks.obliterate({ force: true });
    await webhooks.close();
  }
});

it('counts the cases whose report is due by SLA standing, every standing present', async () => {
  const cm = await svc.token('case_manager');
  // Every standing is there before any case is due (0), so an alert has a series to watch.
  const before = await (await svc.request('GET', '/metrics')).text();
  for (const standing of ['on_time', 'due_soon', 'past_target', 'past_limit']) expect(before).toContain(`sob_cases_sla{standing="${standing}"} 0`);
  const open = async (): Promise<string> => ((await (await svc.request('POST', '/api/cases', { token: cm, body: sampleIntake() })).json()) as { id: string }).id;
  const day = 86_400_000;
  const due = [
    // Ten days out: on time whatever today is (the next business day's end, due_soon's bound, is at most a few days away).
    [await open(), 'records_complete', 10 * day, 12 * day],
    [await open(), 'awaiting_information', -1 * day, 1 * day],
    [await open(), 'records_complete', -3 * day, -1 * day],
    [await open(), 'in_review', -3 * day, -1 * day],
  ] as const;
  for (const [id, status, target, limit] of due) {
    await svc.service.db.query('UPDATE cases SET status = $2, sla_target_due = $3, sla_limit_due = $4 WHERE id = $1', [id, status, new Date(Date.now() + target), new Date(Date.now() + limit)]);
  }
  // In review on time, then paused for the family through the service: a paused case keeps no due
  // date on its row until it resumes, and is on time all the same.
  const paused = await open();
  await svc.service.db.query("UPDATE cases SET status = 'in_review', records_complete_at = now() WHERE id = $1", [paused]);
  const pause = await svc.request('POST', `/api/cases/${paused}/transitions`, { token: cm, body: { to: 'awaiting_information', reason: 'Waiting for the MRI report' } });
  expect(pause.status).toBe(200);
  // Back in review for a correction after the first signature: the clock stopped there, nothing is due.
  const corrected = await open();
  await svc.service.db.query("UPDATE cases SET status = 'in_review', records_complete_at = now(), sla_stopped_at = now() WHERE id = $1", [corrected]);
  const text = await (await svc.request('GET', '/metrics')).text();
  expect(text).toContain('sob_cases_sla{standing="on_time"} 2');
  expect(text).toContain('sob_cases_sla{standing="past_target"} 1');
  expect(text).toContain('sob_cases_sla{standing="past_limit"} 2');
  for (const id of [...due.map(([id]) => id), paused, corrected]) expect(text).not.toContain(id);
});

it("exposes each endpoint's circuit breaker state, read from Redis at scrape time", async () => {
  const ehr = await startSandboxServer({ name: 'metrics-ehr', auth: 'none' });
  const redis = new IORedis(svc.config.redisUrl);
  try {
    const [working, paused] = [await registerOpenEndpoint(svc, 'Metrics EHR (working)', ehr.baseUrl), await registerOpenEndpoint(svc, 'Metrics EHR (paused)', ehr.baseUrl)];
    // What a worker does when the EHR asks to be left alone: the circuit held open for a minute.
    await new RedisCircuitBreaker({ redis, keyPrefix: `${svc.config.queuePrefix}:fhir:`, endpointId: paused }).hold(Date.now() + 60_000);
    const text = await (await svc.request('GET', '/metrics')).text();
    expect(text).toContain(`sob_endpoint_circuit{endpoint="${working}",state="closed"} 1`);
    expect(text).toContain(`sob_endpoint_circuit{endpoint="${working}",state="open"} 0`);
    expect(text).toContain(`sob_endpoint_circuit{endpoint="${paused}",state="open"} 1`);
    expect(text).toContain(`sob_endpoint_circuit{endpoint="${paused}",state="closed"} 0`);
    expect(text).not.toContain('Metrics EHR');
  } finally {
    redis.disconnect();
    await ehr.stop();
  }
});

it('still serves the other metrics when Redis does not answer, without waiting for it', async () => {
  // A port nothing listens on: the counts fail (within their time limit) and the gauge is left out.
  const depth = new QueueDepth({ host: '127.0.0.1', port: 9, maxRetriesPerRequest: 1, commandTimeout: 2000, retryStrategy: () => null }, 'sobtest-metrics');
  try {
    await expect(depth.counts()).rejects.toThrow();
    const metrics = createMetrics(svc.service.db, () => depth.counts());
    const text = await metrics.registry.metrics();
    expect(text).toContain('sob_work_items');
    expect(text).not.toMatch(/sob_queue_jobs\{/);
  } finally {
    await depth.close();
  }
});

/** The value of one sample in a scrape (NaN when it is not there). */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? Number.NaN : Number(line.slice(series.length + 1));
}

it('counts a case whose target is due by the end of the next business day as due_soon, past a holiday, and the others as before', async () => {
  const cm = await svc.token('case_manager');
  const open = async (): Promise<string> => ((await (await svc.request('POST', '/api/cases', { token: cm, body: sampleIntake() })).json()) as { id: string }).id;
  // Thursday 2 July 2026, noon in New York. Friday 3 July is the observed Independence Day (the 4th is a
  // Saturday): the next business day is Monday 6 July.
  const now = new Date('2026-07-02T16:00:00Z');
  const metrics = createMetrics(svc.service.db, undefined, undefined, { now: () => now, timeZone: 'America/New_York' });
  const standings = ['on_time', 'due_soon', 'past_target', 'past_limit'] as const;
  const counts = async (): Promise<Record<string, number>> => {
    const text = await metrics.registry.metrics();
    return Object.fromEntries(standings.map((s) => [s, sample(text, `sob_cases_sla{standing="${s}"}`)]));
  };
  // Cases left by the tests above count as they stand at this clock: only the change is read.
  const before = await counts();
  // Target due dates fall on the last millisecond of a New York day (EDT, UTC-4).
  const endOf = (day: string): Date => new Date(`${day}T23:59:59.999-04:00`);
  const due: [target: Date, limit: Date, signed?: boolean][] = [
    [endOf('2026-07-02'), endOf('2026-07-07')], // due today: due soon
    [endOf('2026-07-06'), endOf('2026-07-08')], // due Monday, the next business day: due soon
    [endOf('2026-07-07'), endOf('2026-07-09')], // due Tuesday: on time
    [endOf('2026-07-06'), endOf('2026-07-08'), true], // due Monday, but the opinion is signed: nothing due
    [endOf('2026-07-01'), endOf('2026-07-06')], // missed yesterday: past target
  ];
  for (const [target, limit, signed] of due) {
    await svc.service.db.query("UPDATE cases SET status = 'in_review', sla_target_due = $2, sla_limit_due = $3, sla_stopped_at = $4 WHERE id = $1", [
      await open(), target, limit, signed ? now : null,
    ]);
  }
  const after = await counts();
  expect(Object.fromEntries(standings.map((s) => [s, (after[s] ?? 0) - (before[s] ?? 0)]))).toEqual({ on_time: 1, due_soon: 2, past_target: 1, past_limit: 0 });
});

it('says each scrape whether Redis answered: 1, then 0 with the queue gauge left out once its Redis stops', async () => {
  // A Redis of this test's own (never the machine's shared one), stopped while the metrics read it.
  const redis = await startOwnRedis();
  const depth = new QueueDepth({ host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: 1, commandTimeout: 2000, retryStrategy: () => null }, 'sobtest-metrics-own');
  try {
    const metrics = createMetrics(svc.service.db, () => depth.counts());
    const up = await metrics.registry.metrics();
    expect(up).toContain('sob_metrics_collect_success{source="redis"} 1');
    expect(up).toContain('sob_metrics_collect_success{source="database"} 1');
    expect(up).toMatch(/sob_queue_jobs\{queue="send-webhook",state="waiting"\} 0/);

    await redis.pause();
    const down = await metrics.registry.metrics();
    expect(down).toContain('sob_metrics_collect_success{source="redis"} 0');
    expect(down).toContain('sob_metrics_collect_success{source="database"} 1');
    expect(down).not.toMatch(/sob_queue_jobs\{/);
    // PostgreSQL's gauges are still served.
    expect(down).toContain('sob_cases_sla{standing="past_limit"}');
  } finally {
    await depth.close();
    await redis.stop();
  }
});

it('says a scrape missed PostgreSQL: database 0, its gauges left out, Redis still read', async () => {
  // A database handle that no longer answers (closed), not the shared server.
  const gone = await createTestDatabase();
  await gone.drop();
  const metrics = createMetrics(gone.db, async () => [{ queue: 'send-webhook', state: 'waiting', n: 3 }]);
  const text = await metrics.registry.metrics();
  expect(text).toContain('sob_metrics_collect_success{source="database"} 0');
  expect(text).toContain('sob_metrics_collect_success{source="redis"} 1');
  expect(text).not.toMatch(/sob_cases_sla\{/);
  expect(text).not.toMatch(/sob_work_items\{/);
  expect(text).not.toMatch(/sob_pull_oldest_unfinished_seconds\{/);
  expect(text).toContain('sob_queue_jobs{queue="send-webhook",state="waiting"} 3');
});
