import http from 'node:http';
import IORedis, { type Redis } from 'ioredis';
import { STALE_SCRATCH_AFTER_MS, type Config } from './config';
import type { Database } from './db/database';
import { openDatabase } from './db/open';
import { createApp } from './http/app';
import type { ReadinessCheck } from './http/readiness-check';
import { warnUnboundSpecialists } from './http/case-access';
import { listenOn } from './http/listen';
import { startWorkerMetricsServer, type WorkerMetricsServer } from './http/worker-metrics';
import { createTokenVerifier } from './http/auth';
import { apiRoutes, publicRoutes } from './http/routes';
import { errorFields, logger } from './log';
import { bullConnectionOptions, createClientConnection, pingRedis, redisReady } from './redis';
import { closeNeedingRedis, startWorkers, type RunningWorkers } from '../queues';
import { PendingSteps } from './util/pending-steps';
import { SchemaMismatchError, schemaReadinessCheck } from './db/schema-version';
import { PullFlowProducer } from '../queues/pull-flow';
import { UploadIngestQueue } from '../queues/ingest-upload';
import { QueueDepth } from '../queues/queue-depth';
import { loadDomainData } from './cases/domain-data';
import { SERVICE_VERSION } from './version';
import { EndpointClients } from './endpoints/endpoint-clients';
import { recordFhirRequestMetrics } from './fhir/request-metrics';
import { endpointCircuits } from './endpoints/endpoint-service';
import { SecretBox } from './security/secret-box';
import { BlobStore, blobStoreRoot } from './blobs/blob-store';
import { ingestWorkDir, removeStaleIngestScratch } from './uploads/ingest-scratch';
import type { FhirClientDeps } from './fhir';
import { loadTerminologyMappings, type TerminologyMappings } from './normalize/terminology';
import { configureAssemblyMemory, processAssemblyMemory } from './assembly/assembly-memory';
import { processAssemblyThread } from './assembly/assembly-thread';
import { loadReportFonts } from './report/report-fonts';
import { processPdfThread } from './report/pdf-thread';
import { WorkDispatcher } from '../queues/deliver-report';

/** How long a stopping service lets open HTTP responses finish before it closes their connections. */
const HTTP_CLOSE_GRACE_MS = 5000;

/**
 * Removes the scratch files of writers killed mid-way (SIGKILL, out of memory): blob temp files and
 * ingest folders, family files that nothing else would ever remove. Counts only are logged (no names);
 * a failure is logged and does not stop the start.
 */
async function removeStaleScratch(db: Database, blobs: BlobStore, dataDir: string): Promise<void> {
  const writtenBefore = new Date(Date.now() - STALE_SCRATCH_AFTER_MS);
  try {
    const tempFiles = (await blobs.removeStaleTempFiles(writtenBefore)).files;
    const ingestFolders = await removeStaleIngestScratch(db, ingestWorkDir(dataDir), writtenBefore);
    if (tempFiles + ingestFolders > 0) logger.info('stale scratch removed', { tempFiles, ingestFolders });
  } catch (err) {
    logger.warn('stale scratch not removed', errorFields(err));
  }
}

/** A running service: whichever roles the config asked for. */
export interface RunningService {
  readonly config: Config;
  readonly db: Database;
  /** Base URL of the HTTP API when the role includes `api`. */
  readonly url?: string;
  /** Base URL of a worker's own metrics and health server (role `worker` with `METRICS_PORT`). */
  readonly metricsUrl?: string;
  stop(): Promise<void>;
  /** Jobs the workers of this process are running now (0 without the worker role). */
  activeJobs(): number;
  /** The steps of a stop under way that have not finished (constant names, no data), for a stop that overran. */
  pendingStop(): string[];
}

/**
 * Opens (and migrates) the database; an error says which setting it came from (`DATABASE_URL`, or
 * the embedded PGlite under `DATA_DIR`), its own message kept (scrubbed where it is logged). A schema
 * a newer release migrated is thrown as is: its message names the versions and what to do.
 */
async function openConfiguredDatabase(config: Config): Promise<Database> {
  try {
    return await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: config.databasePoolSize });
  } catch (err) {
    if (err instanceof SchemaMismatchError) throw err;
    const where = config.databaseUrl ? 'the PostgreSQL database of DATABASE_URL' : 'the embedded PGlite database under DATA_DIR (DATABASE_URL not set)';
    const message = err instanceof Error ? err.message : String(err);
    const code = (err as { code?: unknown } | null)?.code;
    throw Object.assign(new Error(`could not open or migrate ${where}: ${message}`, { cause: err }), {
      name: 'DatabaseStartupError',
      ...(typeof code === 'string' ? { code } : {}),
    });
  }
}

/**
 * Logs the transitions of a Redis connection, not its retries: one warning when it is lost (or cannot
 * be had at start), one line when it is ready again with how long it was down. The error's message
 * (an address and a code) is logged; ioredis retries on its own.
 */
function watchRedis(redis: Redis, connection: string): void {
  let downSince: number | undefined;
  let everReady = false;
  const lost = (err?: unknown): void => {
    if (downSince !== undefined) return;
    downSince = Date.now();
    logger.warn(everReady ? 'redis connection lost' : 'redis not reachable', { event: 'redis.down', connection, ...(err ? errorFields(err) : {}) });
  };
  redis.on('error', (err: unknown) => lost(err));
  // A connection that drops without an error (the server stopped): ioredis says it will retry.
  redis.on('reconnecting', () => lost());
  redis.on('ready', () => {
    if (downSince !== undefined) logger.info('redis connection ready again', { event: 'redis.ready', connection, downMs: Date.now() - downSince });
    downSince = undefined;
    everReady = true;
  });
}

export interface ServiceOverrides {
  /** Outbound FHIR client tuning (tests shorten retry delays and breaker cool-downs). */
  readonly clientOptions?: Partial<FhirClientDeps>;
}

/**
 * Starts the roles the config names: `api` (HTTP), `worker` (BullMQ processors) or `all`.
 * Fails fast when the database cannot be opened or migrated; Redis being down does not stop the
 * API from starting (readiness reports it) and workers reconnect on their own.
 */
export async function startService(config: Config, overrides: ServiceOverrides = {}): Promise<RunningService> {
  const db = await openConfiguredDatabase(config);
  const schemaReady = schemaReadinessCheck(db);
  // PostgreSQL (the system of record) and the schema this release expects: every role's /readyz.
  const storeReadiness: ReadinessCheck[] = [
    { name: 'database', check: () => db.ping() },
    { name: 'schema', check: schemaReady },
  ];
  const domain = loadDomainData();
  const secrets = new SecretBox(config.secretsKey);
  const blobs = new BlobStore(blobStoreRoot(config.dataDir));
  await removeStaleScratch(db, blobs, config.dataDir);
  await warnUnboundSpecialists(db, config.specialistCaseAccess);
  // Fail fast on bad mapping data; assembly reads them through this accessor.
  const terminology = loadTerminologyMappings();
  const mappings = (): TerminologyMappings => terminology;
  if (config.assemblyMemoryMb !== undefined) configureAssemblyMemory(processAssemblyMemory, config.assemblyMemoryMb);
  processAssemblyThread.setIdleMs(config.assemblyThreadIdleMs);
  processPdfThread.setIdleMs(config.pdfThreadIdleMs);
  // Request paths: fail fast while Redis is down. Workers: wait for Redis to come back.
  const apiRedis: Redis = createClientConnection(config.redisUrl);
  const workerRedis: Redis = new IORedis(config.redisUrl, { maxRetriesPerRequest: 3 });
  // The connection of the roles this process runs is watched (its losses and returns logged); the
  // other one is opened but idle.
  const workerRole = config.role === 'worker' || config.role === 'all';
  watchRedis(workerRole ? workerRedis : apiRedis, workerRole ? 'worker' : 'api');
  (workerRole ? apiRedis : workerRedis).on('error', () => undefined);
  const clients = new EndpointClients(
    apiRedis,
    `${config.queuePrefix}:fhir:`,
    { ...(config.outboundProxy ? { proxy: config.outboundProxy } : {}), ...overrides.clientOptions },
    { requestTimeoutMs: config.fhirRequestTimeoutMs, production: config.production },
  );
  // The API's own requests to the EHRs (capabilities reads on registration and edits).
  clients.onEvent(recordFhirRequestMetrics);
  const pulls = new PullFlowProducer({ ...bullConnectionOptions(config.redisUrl), maxRetriesPerRequest: 1, commandTimeout: 2000 }, config.queuePrefix, config.pullJobBackoffMs, config.attachmentJobBackoffMs);
  // Fail fast on missing report fonts, or files that are not fonts (the error names REPORT_FONT_PATH &
  // co.); fontkit parses them when a report or a character check first needs them.
  loadReportFonts(config.opinion.reportFonts);
  const dispatch = new WorkDispatcher({ ...bullConnectionOptions(config.redisUrl), maxRetriesPerRequest: 1, commandTimeout: 2000 }, config.queuePrefix, {
    attempts: config.opinion.deliveryAttempts,
    backoffMs: config.opinion.deliveryBackoffMs,
  });
  // Short command timeouts: a scrape must not hang while Redis is away (the gauge is then left out).
  const queueDepth = new QueueDepth({ ...bullConnectionOptions(config.redisUrl), maxRetriesPerRequest: 1, commandTimeout: 2000 }, config.queuePrefix);
  const uploadIngest = new UploadIngestQueue({ ...bullConnectionOptions(config.redisUrl), maxRetriesPerRequest: 1, commandTimeout: 2000 }, config.queuePrefix);
  let server: http.Server | undefined;
  let workers: RunningWorkers | undefined;
  let url: string | undefined;
  let metricsServer: WorkerMetricsServer | undefined;

  // The steps of a stop under way, for the log line of one that overran (src/main.ts).
  const steps = new PendingSteps();
  const closeAll = async (): Promise<void> => {
    await steps.run('metrics-server', async () => metricsServer?.close());
    await steps.run('workers', async () => workers?.close(steps.within('workers/')).catch((err: unknown) => logger.error('worker shutdown failed', errorFields(err))));
    await steps.run('fhir-clients', () => clients.closeAll());
    // The producers' commands give up after one retry; while Redis is down their QUIT is still not
    // waited for long (closeNeedingRedis).
    const redisUp = redisReady(workerRole ? workerRedis : apiRedis);
    for (const [name, producer] of [['pull-producer', pulls], ['upload-producer', uploadIngest], ['dispatch-producer', dispatch], ['queue-depth', queueDepth]] as const) {
      await steps.run(name, () => closeNeedingRedis(() => producer.close().catch(() => undefined), redisUp));
    }
    // The HTTP server and the workers are closed: no render is under way.
    await steps.run('pdf-thread', () => processPdfThread.close().catch(() => undefined));
    apiRedis.disconnect();
    workerRedis.disconnect();
    await steps.run('database', () => db.close());
  };

  try {
    if (config.role === 'worker' || config.role === 'all') {
      workers = await startWorkers({
        db,
        config,
        domain,
        secrets,
        blobs,
        redis: workerRedis,
        pulls,
        connection: () => bullConnectionOptions(config.redisUrl),
        clientOptions: overrides.clientOptions,
        mappings,
        dispatch,
      });
    }
    if (config.role === 'worker' && config.metricsPort !== undefined) {
      metricsServer = await startWorkerMetricsServer(config.host, config.metricsPort, [
        ...storeReadiness,
        // The worker's own connection, not pinged: no command is sent.
        {
          name: 'redis',
          check: async () => {
            if (!redisReady(workerRedis)) throw new Error(`redis connection ${workerRedis.status}`);
          },
        },
      ]);
      logger.info('worker metrics listening', { port: metricsServer.port });
    }
    if (config.role === 'api' || config.role === 'all') {
      const apiDeps = { db, config, domain, secrets, clients, pulls, mappings, blobs, uploadIngest, dispatch, reportFonts: config.opinion.reportFonts };
      const app = createApp({
        db,
        verifyToken: createTokenVerifier(config.auth),
        routes: [...publicRoutes(apiDeps), ...apiRoutes(apiDeps)],
        // Ready while PostgreSQL (the system of record) answers with the schema of this release: the
        // API serves reads and writes without Redis, which is then reported as degraded only.
        readiness: [
          ...storeReadiness,
          { name: 'redis', check: () => pingRedis(apiRedis), optional: true },
        ],
        bodyLimit: config.bodyLimit,
        version: SERVICE_VERSION,
        caseAccess: { specialist: config.specialistCaseAccess, ehr: config.ehrCaseAccess },
        queueCounts: () => queueDepth.counts(),
        endpointCircuits: () => endpointCircuits({ db, clients }),
        programTimeZone: config.programTimeZone,
      });
      server = http.createServer(app);
      server.keepAliveTimeout = 65_000;
      // A family's CD export (up to MAX_UPLOAD_FILE_BYTES) can take long over a home connection; Node's
      // default whole-request limit is 5 minutes. Headers still have to arrive within headersTimeout.
      server.requestTimeout = config.httpRequestTimeoutMs;
      const listening = await listenOn(server, config.port, config.host);
      url = listening.url;
      logger.info('api listening', { port: listening.port, backend: db.backend });
    }
  } catch (err) {
    await closeAll().catch(() => undefined);
    throw err;
  }

  let stopping: Promise<void> | undefined;
  return {
    config,
    db,
    url,
    ...(metricsServer ? { metricsUrl: metricsServer.url } : {}),
    activeJobs: () => workers?.activeJobs() ?? 0,
    pendingStop: () => steps.names(),
    stop() {
      stopping ??= (async () => {
        if (server) {
          const closing = server;
          await steps.run('http-server', () => new Promise<void>((resolve) => {
            // A client that stopped reading a streamed body (a bundle) would hold its connection,
            // and the shutdown, for ever: after a grace period every connection is closed. The
            // timer goes once the server has closed (a stopped service leaves no timer behind).
            const grace = setTimeout(() => closing.closeAllConnections(), HTTP_CLOSE_GRACE_MS).unref();
            closing.close(() => {
              clearTimeout(grace);
              resolve();
            });
            closing.closeIdleConnections();
          }));
        }
        await closeAll();
      })();
      return stopping;
    },
  };
}
