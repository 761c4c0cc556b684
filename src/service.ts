import http from 'node:http';
import path from 'node:path';
import IORedis, { type Redis } from 'ioredis';
import { MAX_HTTP_REQUEST_TIMEOUT_MS, type Config } from './config';
import type { Database } from './db/database';
import { openDatabase } from './db/open';
import { createApp } from './http/app';
import { warnUnboundSpecialists } from './http/case-access';
import { listenOn } from './http/listen';
import { startWorkerMetricsServer, type WorkerMetricsServer } from './http/worker-metrics';
import { createTokenVerifier } from './http/auth';
import { apiRoutes, publicRoutes } from './http/routes';
import { errorFields, logger } from './log';
import { bullConnectionOptions, createClientConnection, pingRedis } from './redis';
import { startWorkers, type RunningWorkers } from '../queues';
import { PullFlowProducer } from '../queues/pull-flow';
import { UploadIngestQueue } from '../queues/ingest-upload';
import { QueueDepth } from '../queues/queue-depth';
import { loadDomainData } from './cases/domain-data';
import { SERVICE_VERSION } from './version';
import { EndpointClients } from './endpoints/endpoint-clients';
import { recordFhirRequestMetrics } from './fhir/request-metrics';
import { endpointCircuits } from './endpoints/endpoint-service';
import { SecretBox } from './security/secret-box';
import { BlobStore } from './blobs/blob-store';
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
 * How long a blob temp file or an ingest scratch folder may go unwritten before it is taken for one
 * left by a process that died mid-way: far longer than a live one can (an upload request is cut at
 * `server.requestTimeout`, at most `MAX_HTTP_REQUEST_TIMEOUT_MS`; an attachment download when its
 * bytes stop for `FHIR_REQUEST_TIMEOUT_MS`, at most 10 minutes).
 */
export const STALE_SCRATCH_AFTER_MS = 2 * MAX_HTTP_REQUEST_TIMEOUT_MS;

/**
 * Removes the scratch files of writers killed mid-way (SIGKILL, out of memory): blob temp files and
 * ingest folders, family files that nothing else would ever remove. Counts only are logged (no names);
 * a failure is logged and does not stop the start.
 */
async function removeStaleScratch(db: Database, blobs: BlobStore, dataDir: string): Promise<void> {
  const writtenBefore = new Date(Date.now() - STALE_SCRATCH_AFTER_MS);
  try {
    const tempFiles = await blobs.removeStaleTempFiles(writtenBefore);
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
  /** Base URL of a worker's own metrics server (role `worker` with `METRICS_PORT`). */
  readonly metricsUrl?: string;
  stop(): Promise<void>;
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
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: config.databasePoolSize });
  const domain = loadDomainData();
  const secrets = new SecretBox(config.secretsKey);
  const blobs = new BlobStore(path.join(config.dataDir, 'blobs'));
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
  apiRedis.on('error', () => undefined);
  const workerRedis: Redis = new IORedis(config.redisUrl, { maxRetriesPerRequest: 3 });
  workerRedis.on('error', () => undefined);
  const clients = new EndpointClients(
    apiRedis,
    `${config.queuePrefix}:fhir:`,
    { ...(config.outboundProxy ? { proxy: config.outboundProxy } : {}), ...overrides.clientOptions },
    { requestTimeoutMs: config.fhirRequestTimeoutMs, production: config.production },
  );
  // The API's own requests to the EHRs (capabilities reads on registration and edits).
  clients.onEvent(recordFhirRequestMetrics);
  const pulls = new PullFlowProducer({ ...bullConnectionOptions(config.redisUrl), maxRetriesPerRequest: 1, commandTimeout: 2000 }, config.queuePrefix, config.pullJobBackoffMs);
  // Fail fast on missing report fonts (the error names REPORT_FONT_PATH & co.).
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

  const closeAll = async (): Promise<void> => {
    await metricsServer?.close();
    await workers?.close().catch((err: unknown) => logger.error('worker shutdown failed', errorFields(err)));
    await clients.closeAll();
    await pulls.close().catch(() => undefined);
    await uploadIngest.close().catch(() => undefined);
    await dispatch.close().catch(() => undefined);
    await queueDepth.close().catch(() => undefined);
    // The HTTP server and the workers are closed: no render is under way.
    await processPdfThread.close().catch(() => undefined);
    apiRedis.disconnect();
    workerRedis.disconnect();
    await db.close();
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
      metricsServer = await startWorkerMetricsServer(config.host, config.metricsPort);
      logger.info('worker metrics listening', { url: metricsServer.url });
    }
    if (config.role === 'api' || config.role === 'all') {
      const apiDeps = { db, config, domain, secrets, clients, pulls, mappings, blobs, uploadIngest, dispatch, reportFonts: config.opinion.reportFonts };
      const app = createApp({
        db,
        verifyToken: createTokenVerifier(config.auth),
        routes: [...publicRoutes(apiDeps), ...apiRoutes(apiDeps)],
        readiness: [
          { name: 'database', check: () => db.ping() },
          { name: 'redis', check: () => pingRedis(apiRedis) },
        ],
        bodyLimit: config.bodyLimit,
        version: SERVICE_VERSION,
        caseAccess: { specialist: config.specialistCaseAccess, ehr: config.ehrCaseAccess },
        queueCounts: () => queueDepth.counts(),
        endpointCircuits: () => endpointCircuits({ db, clients }),
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
    stop() {
      stopping ??= (async () => {
        if (server) {
          const closing = server;
          await new Promise<void>((resolve) => {
            closing.close(() => resolve());
            closing.closeIdleConnections();
            // A client that stopped reading a streamed body (a bundle) would hold its connection,
            // and the shutdown, for ever: after a grace period every connection is closed.
            setTimeout(() => closing.closeAllConnections(), HTTP_CLOSE_GRACE_MS).unref();
          });
        }
        await closeAll();
      })();
      return stopping;
    },
  };
}
