/**
 * Prometheus metrics at `GET /metrics` (text exposition format): process metrics, one counter
 * and one latency histogram per route pattern and status, and the work in PostgreSQL by state
 * (pulls, deliveries, upload files), the age of the oldest unfinished pull, the cases due by SLA
 * standing, the jobs in each BullMQ queue by state and each endpoint's circuit, read at scrape time,
 * and whether each source (PostgreSQL, Redis) answered that scrape. Labels carry route patterns,
 * queue names, states and endpoint ids only, never case ids or PHI.
 */
import type { NextFunction, Request, Response } from 'express';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Database } from '../db/database';
import { SLA_OVERDUE_STATUSES } from '../db/case-repository';
import { dueSoonBy, PROGRAM_TIME_ZONE } from '../cases/sla';
import type { CircuitState } from '../fhir/circuit-breaker';
import { fhirRequestRegistry } from '../fhir/request-metrics';
import { errorFields, logger } from '../log';

export interface ServiceMetrics {
  readonly registry: Registry;
  /** Middleware for one route: counts and times each answer under the route's pattern. */
  observe(route: string): (req: Request, res: Response, next: NextFunction) => void;
}

/** Work waiting or done, by table and state, counted when Prometheus scrapes. */
const WORK_BY_STATE: readonly { table: string; sql: string }[] = [
  { table: 'pulls', sql: 'SELECT state, count(*)::int AS n FROM pulls GROUP BY state' },
  { table: 'deliveries', sql: 'SELECT state, count(*)::int AS n FROM deliveries GROUP BY state' },
  { table: 'uploads', sql: 'SELECT state, count(*)::int AS n FROM uploads GROUP BY state' },
  // Unfinished pull tasks only; `waiting`: running, but waiting for an endpoint its circuit breaker paused.
  {
    table: 'pull_tasks',
    sql: `SELECT CASE WHEN waiting_until IS NOT NULL THEN 'waiting' ELSE state END AS state, count(*)::int AS n
          FROM pull_tasks WHERE state IN ('queued', 'running') GROUP BY 1`,
  },
];

/** The {@link WORK_BY_STATE} counts; rejects when the database does not answer. */
async function workByState(db: Database): Promise<{ table: string; state: string; n: number }[]> {
  const counts: { table: string; state: string; n: number }[] = [];
  for (const { table, sql } of WORK_BY_STATE) {
    const { rows } = await db.query<{ state: string; n: number }>(sql);
    for (const row of rows) counts.push({ table, state: row.state, n: row.n });
  }
  return counts;
}

/** Where the cases whose report is due stand against their SLA: every standing, 0 when none. Each case counts in one. */
const SLA_STANDINGS = ['on_time', 'due_soon', 'past_target', 'past_limit'] as const;

/**
 * Cases whose report is due (clock running, or paused awaiting information), by standing at `now`:
 * past the 7-business-day limit, past the 5-day target only, due soon (the target falls by the end
 * of the next business day, {@link dueSoonBy}), or on time. A case paused before its dates keeps none on
 * its row (they move with the pause, see `dueDateKept`): on time. A clock stopped at the first
 * signature (a correction back in review) has nothing due, nor has a delivered case.
 */
async function casesBySla(db: Database, now: Date, dueSoonUntil: Date): Promise<{ standing: string; n: number }[]> {
  const { rows } = await db.query<{ standing: string; n: number }>(
    `SELECT CASE WHEN sla_limit_due < $2 THEN 'past_limit' WHEN sla_target_due < $2 THEN 'past_target'
                 WHEN sla_target_due <= $3 THEN 'due_soon' ELSE 'on_time' END AS standing,
            count(*)::int AS n
     FROM cases WHERE status = ANY($1::text[]) AND sla_stopped_at IS NULL GROUP BY 1`,
    [SLA_OVERDUE_STATUSES, now, dueSoonUntil],
  );
  return rows;
}

/** The states of an unfinished pull. */
const UNFINISHED_PULL_STATES = ['queued', 'running'] as const;

/**
 * Per unfinished state, how long ago the oldest pull in it was created (seconds at `now`; a retried
 * pull counts from its creation too).
 */
async function oldestUnfinishedPulls(db: Database, now: Date): Promise<{ state: string; seconds: number }[]> {
  const { rows } = await db.query<{ state: string; seconds: number }>(
    `SELECT state, GREATEST(0, EXTRACT(EPOCH FROM ($2::timestamptz - min(created_at))))::float8 AS seconds
     FROM pulls WHERE state = ANY($1::text[]) GROUP BY state`,
    [UNFINISHED_PULL_STATES, now],
  );
  return rows;
}

/** Jobs per queue and state, read when Prometheus scrapes (see `queues/queue-depth.ts`). */
export type QueueCounts = () => Promise<readonly { queue: string; state: string; n: number }[]>;

/** Each registered endpoint's circuit breaker state, read when Prometheus scrapes (from Redis, shared by every worker). */
export type EndpointCircuits = () => Promise<readonly { endpointId: string; state: CircuitState }[]>;

const CIRCUIT_STATES: readonly CircuitState[] = ['closed', 'open', 'half-open'];

/**
 * `read`, shared by the callers that ask while it is under way: the gauges of one scrape (prom-client
 * starts every collect at once) and `sob_metrics_collect_success` make one read of each source.
 */
function sharedWhileRunning<T>(read: () => Promise<T>): () => Promise<T> {
  let running: Promise<T> | undefined;
  return () => {
    running ??= read().finally(() => {
      running = undefined;
    });
    return running;
  };
}

/** Options of {@link createMetrics}. */
export interface MetricsOptions {
  /** The clock SLA standings and pull ages are read at; default the process's (tests pass a fixed one). */
  readonly now?: () => Date;
  /** The program's time zone, whose business days `due_soon` counts; default {@link PROGRAM_TIME_ZONE}. */
  readonly timeZone?: string;
}

/** One sample of a gauge read at scrape time: its labels and value. */
interface Sample {
  readonly labels: Record<string, string>;
  readonly value: number;
}

/**
 * A gauge whose samples `read` gives at each scrape. When `read` fails (the database or Redis away)
 * the gauge is left empty and everything else is still served (readiness says what is down,
 * `sob_metrics_collect_success` says the scrape missed it); the failure is logged as `unavailable`
 * when given.
 */
function gaugeReadAtScrape(
  registry: Registry,
  gauge: { readonly name: string; readonly help: string; readonly labelNames: readonly string[] },
  read: () => Promise<readonly Sample[]>,
  unavailable?: string,
): void {
  new Gauge({
    ...gauge,
    registers: [registry],
    async collect() {
      this.reset();
      const samples = await read().catch((err: unknown) => {
        if (unavailable) logger.warn(`metrics: ${unavailable}`, errorFields(err));
        return [];
      });
      for (const { labels, value } of samples) this.set(labels, value);
    },
  });
}

export function createMetrics(db: Database, queueCounts?: QueueCounts, endpointCircuits?: EndpointCircuits, options: MetricsOptions = {}): ServiceMetrics {
  const now = options.now ?? (() => new Date());
  const timeZone = options.timeZone ?? PROGRAM_TIME_ZONE;
  // What one scrape reads of each source, once however many gauges use it.
  const work = sharedWhileRunning(() => workByState(db));
  const sla = sharedWhileRunning(() => {
    const at = now();
    return casesBySla(db, at, dueSoonBy(at, timeZone));
  });
  const oldestPulls = sharedWhileRunning(() => oldestUnfinishedPulls(db, now()));
  const queues = queueCounts && sharedWhileRunning(queueCounts);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const requests = new Counter({ name: 'sob_http_requests_total', help: 'API answers by method, route pattern and status', labelNames: ['method', 'route', 'status'], registers: [registry] });
  const duration = new Histogram({
    name: 'sob_http_request_duration_seconds',
    help: 'API answer time by method and route pattern',
    labelNames: ['method', 'route'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [registry],
  });
  gaugeReadAtScrape(
    registry,
    {
      name: 'sob_work_items',
      help: 'Pulls, deliveries, upload files and unfinished pull tasks (waiting: for a paused endpoint) in PostgreSQL by state',
      labelNames: ['table', 'state'],
    },
    async () => (await work()).map(({ table, state, n }) => ({ labels: { table, state }, value: n })),
    'work counts unavailable',
  );
  gaugeReadAtScrape(
    registry,
    {
      name: 'sob_pull_oldest_unfinished_seconds',
      help: 'Age of the oldest unfinished pull by state (queued, running), seconds since it was created; 0 when none',
      labelNames: ['state'],
    },
    async () => {
      const oldest = await oldestPulls();
      return UNFINISHED_PULL_STATES.map((state) => ({ labels: { state }, value: oldest.find((o) => o.state === state)?.seconds ?? 0 }));
    },
    'pull ages unavailable',
  );
  gaugeReadAtScrape(
    registry,
    {
      name: 'sob_cases_sla',
      help:
        'Cases whose report is due, by SLA standing: on_time, due_soon (5-business-day target due by the end of the next business day), ' +
        'past_target (5 business days), past_limit (7 business days); each case in one standing',
      labelNames: ['standing'],
    },
    async () => {
      const counts = await sla();
      return SLA_STANDINGS.map((standing) => ({ labels: { standing }, value: counts.find((c) => c.standing === standing)?.n ?? 0 }));
    },
    'SLA counts unavailable',
  );
  if (endpointCircuits) {
    gaugeReadAtScrape(
      registry,
      {
        name: 'sob_endpoint_circuit',
        help: "Each EHR endpoint's circuit breaker: 1 for its state (closed, open: paused after repeated failures, its jobs waiting; half-open: a probe decides), 0 for the others",
        labelNames: ['endpoint', 'state'],
      },
      async () =>
        (await endpointCircuits()).flatMap((c) => CIRCUIT_STATES.map((state) => ({ labels: { endpoint: c.endpointId, state }, value: c.state === state ? 1 : 0 }))),
      'endpoint circuits unavailable',
    );
  }
  if (queues) {
    // Redis away: no log line of its own (the readiness check names it).
    gaugeReadAtScrape(
      registry,
      {
        name: 'sob_queue_jobs',
        help: 'BullMQ jobs per queue and state (waiting, prioritized, waiting-children, active, delayed, failed, completed)',
        labelNames: ['queue', 'state'],
      },
      async () => (await queues()).map(({ queue, state, n }) => ({ labels: { queue, state }, value: n })),
    );
  }
  // Per source, whether every read of it answered this scrape: a gauge left empty by an outage
  // otherwise reads as "nothing there" (an alert on it resolves). Redis: the queue counts (the
  // circuits read PostgreSQL too, so they say nothing of Redis alone).
  const sources: { source: string; reads: (() => Promise<unknown>)[] }[] = [
    { source: 'database', reads: [work, sla, oldestPulls] },
    ...(queues ? [{ source: 'redis', reads: [queues] }] : []),
  ];
  gaugeReadAtScrape(
    registry,
    {
      name: 'sob_metrics_collect_success',
      help: 'Whether this scrape read its source (database: PostgreSQL, redis: the queues): 1, or 0 when it did not answer and its gauges are left out',
      labelNames: ['source'],
    },
    () =>
      Promise.all(
        sources.map(async ({ source, reads }) => {
          const settled = await Promise.allSettled(reads.map((read) => read()));
          return { labels: { source }, value: settled.every((r) => r.status === 'fulfilled') ? 1 : 0 };
        }),
      ),
  );
  return {
    // This process's requests to the EHRs (fhir/request-metrics.ts) are served beside the API's own.
    registry: Registry.merge([registry, fhirRequestRegistry]),
    observe: (route) => (req, res, next) => {
      const started = process.hrtime.bigint();
      res.on('finish', () => {
        requests.inc({ method: req.method, route, status: String(res.statusCode) });
        duration.observe({ method: req.method, route }, Number(process.hrtime.bigint() - started) / 1e9);
      });
      next();
    },
  };
}
