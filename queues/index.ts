import type { ConnectionOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../src/config';
import type { DomainData } from '../src/cases/domain-data';
import type { BlobStore } from '../src/blobs/blob-store';
import type { Database } from '../src/db/database';
import type { FhirClientDeps } from '../src/fhir';
import type { SecretBox } from '../src/security/secret-box';
import type { TerminologyMappings } from '../src/normalize/terminology';
import { startAssembleCaseWorker } from './assemble-case';
import { createAttachmentQueue, startFetchAttachmentWorker } from './fetch-attachment';
import { startIngestUploadWorker } from './ingest-upload';
import type { WorkDispatch } from '../src/notify/events';
import { startDeliverReportWorker } from './deliver-report';
import { startNotifyWorker } from './notify';
import { startSendWebhookWorker } from './send-webhook';
import type { PullFlowProducer } from './pull-flow';
import { startPullReconciler } from './pull-reconcile';
import { startPullSourceWorker } from './pull-source';
import { runningJobs } from './run-job';
import { startSlaSweep } from './sla-sweep';
import { closeWorker } from './close-worker';
import { EndpointClients } from '../src/endpoints/endpoint-clients';
import { recordRetryEvent } from '../src/pull/retry-count';
import { recordFhirRequestMetrics } from '../src/fhir/request-metrics';
import { reassemblerOfOutdatedRecords } from '../src/assembly/source-changes';
import { logger } from '../src/log';
import { redisReady } from '../src/redis';
import { PendingSteps } from '../src/util/pending-steps';
import { stopController } from '../src/util/stop-controller';
import { withTimeout } from '../src/util/with-timeout';

/**
 * BullMQ topology: one module per queue (payload schema, retry policy, concurrency, processor).
 *
 * | queue | module | what |
 * |---|---|---|
 * | `sla-sweep` | sla-sweep.ts | repeatable: records SLA misses on case timelines |
 * | `pull-source` | pull-source.ts | flow child: pages one query at one source into the raw store |
 * | `fetch-attachment` | fetch-attachment.ts | streams an attachment into the blob store |
 * | `assemble-case` | assemble-case.ts | flow parent: ends the pull, moves the case on |
 * | `pull-reconcile` | pull-reconcile.ts | repeatable: re-enqueues unfinished pulls from Postgres |
 * | `ingest-upload` | ingest-upload.ts | one upload: zips, DICOM headers, PDFs, identity, then re-assembly |
 * | `deliver-report` | deliver-report.ts | one signed opinion version into one recipient EHR, exactly once |
 * | `notify` | notify.ts | repeatable + kicked: outbox → notifications and webhook jobs; re-queues lost jobs |
 * | `send-webhook` | send-webhook.ts | one signed event to one subscriber; disables a subscriber that keeps failing |
 */
export interface WorkerDeps {
  readonly db: Database;
  readonly config: Config;
  readonly domain: DomainData;
  readonly secrets: SecretBox;
  readonly blobs: BlobStore;
  /** Shared client for token cache, rate limits and breakers. */
  readonly redis: Redis;
  readonly pulls: PullFlowProducer;
  /** A fresh connection per Queue/Worker, as BullMQ recommends for blocking commands. */
  readonly connection: () => ConnectionOptions;
  readonly clientOptions?: Partial<FhirClientDeps>;
  /** Terminology mappings for case assembly (loaded once per process). */
  readonly mappings: () => TerminologyMappings;
  /** Producers of delivery jobs and outbox kicks (queues/deliver-report.ts). */
  readonly dispatch: WorkDispatch;
}

export interface RunningWorkers {
  /**
   * Stops taking jobs and closes every worker and queue. While Redis answers, running pull-source jobs
   * are first told to stop (`PullWorkerDeps.stopping`): each ends at its next page boundary and is
   * handed back to the queue (run again at once, elsewhere, from its committed cursor), as is a
   * fetch-attachment job whose download has not been sent yet; then each worker waits for its running
   * jobs, once its own connections are back from an outage (close-worker.ts). While Redis does not
   * answer (the shared connection not ready), the workers are closed without waiting (BullMQ's forced
   * close: their jobs' locks lapse and another worker picks them up) and the queues' connections are
   * dropped, since nothing sent to Redis would be answered.
   * @param steps - Where the close's steps are listed while under way (constant names: `worker:<queue>`,
   *   `queue:<queue>`, …), for a stop that overran.
   */
  close(steps?: PendingSteps): Promise<void>;
  /** Jobs this process is running now, over all its workers. */
  activeJobs(): number;
}

/** How long a close that needs Redis may wait while Redis is down before it is left to the process's exit. */
const CLOSE_WHILE_DOWN_MS = 2000;

/**
 * Waits for a close that talks to Redis (a queue's QUIT, a producer's pending command). While Redis is
 * down such a close can wait for ever: BullMQ's connections retry without limit, and a QUIT waits in
 * the client's offline queue behind the commands already there. It is then given
 * {@link CLOSE_WHILE_DOWN_MS} and left behind (the process exits after the stop; nothing it held is
 * lost: Redis holds work only, PostgreSQL every fact).
 */
export async function closeNeedingRedis(close: () => Promise<unknown>, redisUp: boolean): Promise<void> {
  if (redisUp) {
    await close();
    return;
  }
  await withTimeout(close(), CLOSE_WHILE_DOWN_MS, () => new Error('close left behind: redis down')).catch(() => undefined);
}

/**
 * How many waits can listen for the process's stop at once (`stopController`): a request waiting to be
 * sent (its endpoint's limiter slot, a retry backoff) listens until its wait ends, and a pull job has at
 * most two requests under way (its page and the next one fetched ahead), an attachment job one.
 */
export function stopWaitsAtOnce(config: Pick<Config, 'pullConcurrency' | 'attachmentConcurrency'>): number {
  return 2 * config.pullConcurrency + config.attachmentConcurrency;
}

export async function startWorkers(deps: WorkerDeps): Promise<RunningWorkers> {
  const { config } = deps;
  const prefix = config.queuePrefix;
  const clientOptions = {
    ...(config.outboundProxy ? { proxy: config.outboundProxy } : {}),
    ...deps.clientOptions,
    limiter: { leaseMs: config.concurrencyLeaseMs, ...deps.clientOptions?.limiter },
  };
  // One client per endpoint in this process, shared by every pull and attachment job.
  const clients = new EndpointClients(deps.redis, `${prefix}:fhir:`, clientOptions, { requestTimeoutMs: config.fhirRequestTimeoutMs, production: config.production });
  // Fired as the stop begins: running pull tasks end at their next page boundary and are handed back.
  const stopping = stopController(stopWaitsAtOnce(config));
  clients.onEvent(recordRetryEvent);
  clients.onEvent(recordFhirRequestMetrics);
  const pullDeps = {
    clients,
    db: deps.db,
    secrets: deps.secrets,
    redis: deps.redis,
    fhirKeyPrefix: `${prefix}:fhir:`,
    blobs: deps.blobs,
    maxAttachmentBytes: config.maxAttachmentBytes,
    requestTimeoutMs: config.fhirRequestTimeoutMs,
    clientOptions,
    stopping: stopping.signal,
  };
  const caseDeps = { db: deps.db, config, domain: deps.domain, mappings: deps.mappings };
  const sla = startSlaSweep({ ...caseDeps, blobs: deps.blobs }, deps.connection, prefix);
  const attachmentQueue = createAttachmentQueue(deps.connection(), prefix);
  const lock = { lockDurationMs: config.jobLockMs };
  const workers = [
    sla.worker,
    startPullSourceWorker(pullDeps, deps.connection, prefix, attachmentQueue, {
      concurrency: config.pullConcurrency, maxPauseWaitMs: config.pullMaxPauseWaitMs, attachmentBackoffMs: config.attachmentJobBackoffMs, ...lock,
    }),
    startFetchAttachmentWorker(pullDeps, deps.connection, prefix, { concurrency: config.attachmentConcurrency, maxPauseWaitMs: config.pullMaxPauseWaitMs, ...lock }),
    startAssembleCaseWorker(caseDeps, deps.connection, prefix, config.jobLockMs),
  ];
  const ingest = startIngestUploadWorker(
    { db: deps.db, mappings: deps.mappings, blobs: deps.blobs, uploads: config.uploads, dataDir: config.dataDir },
    deps.connection,
    prefix,
    config.jobLockMs,
  );
  workers.push(ingest.worker);
  const reconciler = startPullReconciler(caseDeps, deps.pulls, deps.connection, prefix, config.reconcileEveryMs, ingest.requeueWaiting, reassemblerOfOutdatedRecords(caseDeps));
  workers.push(reconciler.worker);
  const opinion = config.opinion;
  workers.push(
    startDeliverReportWorker({ ...caseDeps, secrets: deps.secrets, clients, dispatch: deps.dispatch }, deps.connection, prefix, {
      concurrency: opinion.deliveryConcurrency,
      maxPauseWaitMs: opinion.deliveryMaxPauseWaitMs,
      ...lock,
    }),
  );
  const notify = startNotifyWorker(
    { db: deps.db, dispatch: deps.dispatch, webhooks: { attempts: opinion.webhookAttempts, backoffMs: opinion.webhookBackoffMs }, staleAfterMs: Math.max(60_000, 4 * config.jobLockMs), outboxRetentionDays: opinion.notifyOutboxRetentionDays },
    deps.connection,
    prefix,
    opinion.notifyPollMs,
  );
  const webhooks = startSendWebhookWorker(
    { db: deps.db, secrets: deps.secrets, timeoutMs: opinion.webhookTimeoutMs, disableAfter: opinion.webhookDisableAfter, production: config.production, ...(config.outboundProxy ? { proxy: config.outboundProxy } : {}) },
    deps.connection,
    prefix,
  );
  workers.push(notify.worker, webhooks.worker);
  const activeJobs = runningJobs;
  return {
    activeJobs,
    async close(steps = new PendingSteps()) {
      // While Redis answers, each worker takes no new job and waits for its running ones (BullMQ's
      // close; pull jobs hand themselves back, below). A stop that cannot wait that long ends at
      // SHUTDOWN_TIMEOUT_MS (src/main.ts), which every job survives: it resumes from its committed cursor on the next worker (the drills kill
      // workers mid-job). Not forced after a grace: the FHIR clients and DICOM threads closed below
      // under a job still running would make its last attempt record a failure that is only the
      // shutdown's.
      // While Redis does not answer, a graceful close never settles (BullMQ waits to hand its
      // blocking connection back through Redis; taskforcesh/bullmq#4656) and, left waiting, the
      // half-closed workers would take jobs again once Redis returns: they are closed at once.
      const redisUp = redisReady(deps.redis);
      if (!redisUp) logger.warn('redis not ready at shutdown: workers closed without waiting for their jobs', { activeJobs: activeJobs() });
      // A pull job pages its query to the end (hundreds of pages from a slow EHR): with Redis up to
      // take them back, pull jobs stop at their next page boundary instead and are handed back
      // (pull-source.ts). Fired right before the workers close (nothing awaited between, unless a worker's
      // connection is still coming back from an outage: close-worker.ts), so no job is taken after it only
      // to be handed back. A fetch-attachment job is one request (a download cut short could not resume):
      // one under way is waited for, one still waiting to send its request (limiter slot, token, retry
      // backoff) withdraws it and is handed back (fetch-attachment.ts).
      // Without Redis a job could not be handed back: the workers are closed without waiting, as before.
      if (redisUp) stopping.abort();
      await Promise.all(workers.map((w) => steps.run(`worker:${w.name}`, () => closeWorker(w, redisUp))));
      await steps.run('ingest-upload', () => closeNeedingRedis(() => ingest.close(!redisUp), redisUp));
      await steps.run('notify', () => Promise.all([closeNeedingRedis(() => notify.close(), redisUp), webhooks.close()]));
      await Promise.all([sla.queue, attachmentQueue, reconciler.queue].map((q) => steps.run(`queue:${q.name}`, () => closeNeedingRedis(() => q.close(), redisUp))));
      await steps.run('fhir-clients', () => clients.closeAll());
    },
  };
}
