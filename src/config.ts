import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { outboundProxy, type OutboundProxy } from './fhir/outbound-proxy';
import { EHR_CASE_ACCESS, SPECIALIST_CASE_ACCESS, type EhrCaseAccess, type SpecialistCaseAccess } from './http/case-access';
import { PROGRAM_TIME_ZONE } from './cases/sla';

/**
 * Longest `HTTP_REQUEST_TIMEOUT_MS`: the sweeps of the blob temp files of killed writers (at start,
 * and the workers' daily orphan sweep: {@link STALE_SCRATCH_AFTER_MS}) count on no request lasting half as long as its window.
 */
export const MAX_HTTP_REQUEST_TIMEOUT_MS = 12 * 60 * 60 * 1000;

/**
 * How long a blob temp file or an ingest scratch folder may go unwritten before it is taken for one
 * left by a process that died mid-way: far longer than a live one can (an upload request is cut at
 * `server.requestTimeout`, at most `MAX_HTTP_REQUEST_TIMEOUT_MS`; an attachment download when its
 * bytes stop for `FHIR_REQUEST_TIMEOUT_MS`, at most 10 minutes).
 */
export const STALE_SCRATCH_AFTER_MS = 2 * MAX_HTTP_REQUEST_TIMEOUT_MS;
/** The slowest uplink a family's largest file is given time for by default (1 Mbit/s). */
const SLOWEST_UPLOAD_BYTES_PER_MS = 1_000_000 / 8 / 1000;
/** The default `HTTP_REQUEST_TIMEOUT_MS` never goes below this (the timeout of the service before it was configurable). */
const MIN_DEFAULT_HTTP_REQUEST_TIMEOUT_MS = 60 * 60 * 1000;

/**
 * The default time the API gives a request to arrive whole (Node's `server.requestTimeout`, which
 * bounds an upload's body too): enough for a file of `MAX_UPLOAD_FILE_BYTES` over a 1 Mbit/s uplink
 * (2.4 h for the default 1 GiB), at least an hour, at most {@link MAX_HTTP_REQUEST_TIMEOUT_MS}.
 */
export function defaultHttpRequestTimeoutMs(maxUploadFileBytes: number): number {
  const forLargestFile = Math.ceil(maxUploadFileBytes / SLOWEST_UPLOAD_BYTES_PER_MS);
  return Math.min(MAX_HTTP_REQUEST_TIMEOUT_MS, Math.max(MIN_DEFAULT_HTTP_REQUEST_TIMEOUT_MS, forLargestFile));
}

/**
 * Default `SHUTDOWN_TIMEOUT_MS`: how long a stop (SIGTERM, SIGINT) may take in all before the process
 * exits non-zero naming the steps still pending. Below docker-compose's `stop_grace_period` of the
 * worker (2 min), so the process ends on its own terms and says why rather than being SIGKILLed.
 */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 90_000;

/** The process roles of the one binary: the HTTP API, the queue workers, or both. */
export const ROLES = ['api', 'worker', 'all'] as const;
export type Role = (typeof ROLES)[number];

const LOG_LEVELS = ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'] as const;

/** Empty strings count as "not set", so `DATABASE_URL=` behaves like an unset variable. */
const optionalString = z
  .string()
  .trim()
  .transform((value) => (value === '' ? undefined : value))
  .optional();

/** The longest `NOTIFY_OUTBOX_RETENTION_DAYS` (ten years). */
const MAX_OUTBOX_RETENTION_DAYS = 3650;
const OUTBOX_RETENTION_ERROR = `must be a whole number of days from 1 to ${MAX_OUTBOX_RETENTION_DAYS}`;

/** The longest `BLOB_ORPHAN_GRACE_HOURS` (a year). */
const MAX_BLOB_ORPHAN_GRACE_HOURS = 8760;
const BLOB_ORPHAN_GRACE_ERROR = `must be a whole number of hours from 1 to ${MAX_BLOB_ORPHAN_GRACE_HOURS}`;

/** First delay between attempts of a pull job, by default (`PULL_JOB_BACKOFF_MS`; doubles each time). */
export const PULL_JOB_BACKOFF_MS = 5000;

/** First delay between attempts of an attachment job, by default (`ATTACHMENT_JOB_BACKOFF_MS`; doubles each time). */
export const ATTACHMENT_JOB_BACKOFF_MS = 3000;

const EnvSchema = z.object({
  ROLE: z.enum(ROLES).default('all'),
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  HOST: z.string().default('0.0.0.0'),
  METRICS_PORT: optionalString.pipe(z.coerce.number<string | undefined>().int().min(0).max(65535).optional()),
  DATABASE_URL: optionalString.pipe(
    z.url({ protocol: /^postgres(ql)?$/, error: 'must be a PostgreSQL URL, postgres://user:password@host:5432/database (or postgresql://…)' }).optional(),
  ),
  DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(200).default(10),
  REDIS_URL: z.url({ protocol: /^rediss?$/ }).default('redis://127.0.0.1:6379'),
  QUEUE_PREFIX: z.string().regex(/^[A-Za-z0-9:_-]+$/).default('sob'),
  DATA_DIR: z.string().min(1).default('./data'),
  LOG_LEVEL: z.enum(LOG_LEVELS).default('info'),
  AUTH_JWT_SECRET: optionalString.pipe(z.string().min(32, 'must be at least 32 characters').optional()),
  AUTH_JWKS_URL: optionalString.pipe(z.url().optional()),
  AUTH_ISSUER: optionalString,
  AUTH_AUDIENCE: optionalString,
  AUTH_ROLES_CLAIM: z.string().min(1).default('roles'),
  BODY_LIMIT: z.string().regex(/^\d+(kb|mb)$/i, 'must look like 512kb or 1mb').default('1mb'),
  SPECIALIST_CASE_ACCESS: z.enum(SPECIALIST_CASE_ACCESS).default('unless-assigned-elsewhere'),
  EHR_CASE_ACCESS: z.enum(EHR_CASE_ACCESS).default('linked-or-unbound'),
  PROGRAM_TIME_ZONE: z.string().default(PROGRAM_TIME_ZONE),
  SECRETS_KEY: optionalString.pipe(
    z
      .string()
      .refine((v) => Buffer.from(v, 'base64').length === 32, 'must be 32 random bytes, base64-encoded (openssl rand -base64 32)')
      .optional(),
  ),
  PULL_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(8),
  ATTACHMENT_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(4),
  JOB_LOCK_MS: z.coerce.number().int().min(1000).max(600_000).default(30_000),
  MAX_ATTACHMENT_BYTES: z.coerce.number().int().min(1024).default(100 * 1024 * 1024),
  RECONCILE_EVERY_MS: z.coerce.number().int().min(1000).default(30_000),
  PULL_JOB_BACKOFF_MS: z.coerce.number().int().min(10).default(PULL_JOB_BACKOFF_MS),
  ATTACHMENT_JOB_BACKOFF_MS: z.coerce.number().int().min(10).default(ATTACHMENT_JOB_BACKOFF_MS),
  PULL_MAX_PAUSE_WAIT_MS: z.coerce.number().int().min(0).max(86_400_000).default(900_000),
  ASSEMBLY_MEMORY_MB: z.coerce.number().int().min(1).max(1_048_576).optional(),
  ASSEMBLY_THREAD_IDLE_MS: z.coerce.number().int().min(0).max(3_600_000).default(1000),
  PDF_THREAD_IDLE_MS: z.coerce.number().int().min(0).max(3_600_000).default(30_000),
  CONCURRENCY_LEASE_MS: z.coerce.number().int().min(500).max(600_000).default(10_000),
  FHIR_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(60_000),
  MAX_UPLOAD_FILE_BYTES: z.coerce.number().int().min(1024).default(1024 * 1024 * 1024),
  MAX_UPLOAD_CASE_BYTES: z.coerce.number().int().min(1024).default(4 * 1024 * 1024 * 1024),
  HTTP_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(60_000).max(MAX_HTTP_REQUEST_TIMEOUT_MS).optional(),
  UPLOAD_TOKEN_TTL_SECONDS: z.coerce.number().int().min(60).max(7 * 86_400).default(3600),
  MAX_ZIP_ENTRIES: z.coerce.number().int().min(1).max(1_000_000).default(20_000),
  MAX_ZIP_RATIO: z.coerce.number().min(2).max(100_000).default(200),
  DICOM_PARSE_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(10_000),
  REPORT_FONT_PATH: optionalString,
  REPORT_BOLD_FONT_PATH: optionalString,
  REPORT_FALLBACK_FONT_PATH: optionalString,
  DELIVERY_ATTEMPTS: z.coerce.number().int().min(1).max(50).default(8),
  DELIVERY_BACKOFF_MS: z.coerce.number().int().min(10).default(5000),
  DELIVERY_MAX_PAUSE_WAIT_MS: z.coerce.number().int().min(0).max(7 * 86_400_000).default(4 * 3_600_000),
  DELIVERY_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(4),
  // 15 tries from 5 s, doubling: retried for ~22.8 h (the last waits ~11.4 h), like Standard Webhooks'
  // schedule (5 s … 10 h, ~27 h): a receiver down for a restart or a maintenance window loses nothing.
  WEBHOOK_ATTEMPTS: z.coerce.number().int().min(1).max(50).default(15),
  WEBHOOK_BACKOFF_MS: z.coerce.number().int().min(10).default(5000),
  WEBHOOK_DISABLE_AFTER: z.coerce.number().int().min(1).max(1000).default(3),
  WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(10_000),
  NOTIFY_POLL_MS: z.coerce.number().int().min(100).default(5000),
  NOTIFY_OUTBOX_RETENTION_DAYS: z.coerce
    .number({ error: OUTBOX_RETENTION_ERROR })
    .int({ error: OUTBOX_RETENTION_ERROR })
    .min(1, { error: OUTBOX_RETENTION_ERROR })
    .max(MAX_OUTBOX_RETENTION_DAYS, { error: OUTBOX_RETENTION_ERROR })
    .default(30),
  BLOB_ORPHAN_GRACE_HOURS: z.coerce
    .number({ error: BLOB_ORPHAN_GRACE_ERROR })
    .int({ error: BLOB_ORPHAN_GRACE_ERROR })
    .min(1, { error: BLOB_ORPHAN_GRACE_ERROR })
    .max(MAX_BLOB_ORPHAN_GRACE_HOURS, { error: BLOB_ORPHAN_GRACE_ERROR })
    .default(24),
  OUTBOUND_PROXY_URL: optionalString.pipe(z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// proxy URL' }).optional()),
  OUTBOUND_NO_PROXY: optionalString,
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(1000).max(3_600_000).default(DEFAULT_SHUTDOWN_TIMEOUT_MS),
  NODE_ENV: z.string().default('development'),
});

export interface AuthConfig {
  /** HS256 shared secret: development and tests. */
  readonly jwtSecret?: string;
  /** JWKS URL for RS256/ES256 tokens from the hospital's identity provider: production. */
  readonly jwksUrl?: string;
  readonly issuer?: string;
  readonly audience?: string;
  /** Name of the claim that carries the caller's roles (string or string[]). */
  readonly rolesClaim: string;
  /** True when no auth was configured outside production and a local development secret is in use. */
  readonly usingDevelopmentSecret: boolean;
}

export interface Config {
  readonly role: Role;
  /**
   * `NODE_ENV=production`: real auth, `SECRETS_KEY` and PostgreSQL (`DATABASE_URL`) are required, and
   * no endpoint or webhook may be registered with `allowInsecureHttp` (http: and loopback are for sandboxes).
   */
  readonly production: boolean;
  readonly port: number;
  readonly host: string;
  /**
   * Role `worker` only: the port of its own `GET /metrics` (process metrics and its requests to the
   * EHRs), on `host`; none when unset. The API roles serve `/metrics` on `port`.
   */
  readonly metricsPort: number | undefined;
  /** PostgreSQL URL; when absent the embedded PGlite store under `dataDir` is used (never in production). */
  readonly databaseUrl?: string;
  readonly databasePoolSize: number;
  readonly redisUrl: string;
  readonly queuePrefix: string;
  readonly dataDir: string;
  readonly logLevel: (typeof LOG_LEVELS)[number];
  readonly auth: AuthConfig;
  readonly bodyLimit: string;
  /** Which cases a token with only the specialist role may open (see `src/http/case-access.ts`). */
  readonly specialistCaseAccess: SpecialistCaseAccess;
  /** Which cases a token with only the ehr role may open (see `src/http/case-access.ts`). */
  readonly ehrCaseAccess: EhrCaseAccess;
  readonly programTimeZone: string;
  /** AES-256 key that encrypts endpoint secrets at rest. */
  readonly secretsKey: Buffer;
  /** Pull jobs run at once per worker process (the per-endpoint limits still apply). */
  readonly pullConcurrency: number;
  readonly attachmentConcurrency: number;
  /** BullMQ job lock: a job whose worker died is picked up again after about this long. */
  readonly jobLockMs: number;
  readonly maxAttachmentBytes: number;
  readonly reconcileEveryMs: number;
  /** First delay between attempts of a failed pull job (doubles each time). */
  readonly pullJobBackoffMs: number;
  /** First delay between attempts of a failed attachment (document download) job (doubles each time). */
  readonly attachmentJobBackoffMs: number;
  /** How long a pull task may wait, in all, for an endpoint paused by its circuit breaker before it fails the normal way. */
  readonly pullMaxPauseWaitMs: number;
  /** Heap (MB) the case assemblies of one process may hold together; default 70 % of V8's heap limit (src/assembly/assembly-memory.ts). */
  readonly assemblyMemoryMb?: number;
  /** How long the assembly thread waits for the next assembly before it ends and gives its heap back (src/assembly/assembly-thread.ts). */
  readonly assemblyThreadIdleMs: number;
  /** How long the PDF thread waits for the next report or receipt before it ends and gives its heap back (src/report/pdf-thread.ts). */
  readonly pdfThreadIdleMs: number;
  /** Whole-request timeout of outbound FHIR requests. */
  readonly fhirRequestTimeoutMs: number;
  /**
   * How long the API gives a request to arrive whole, body included (`server.requestTimeout`; a 408
   * past it): what bounds a family upload on a slow uplink. See {@link defaultHttpRequestTimeoutMs}.
   */
  readonly httpRequestTimeoutMs: number;
  /** Proxy for every outbound request, and the hosts reached directly (`OUTBOUND_PROXY_URL`, `OUTBOUND_NO_PROXY`). */
  readonly outboundProxy?: OutboundProxy;
  /**
   * Lifetime of an endpoint concurrency slot without renewal (renewed while the request runs):
   * how soon the slots of a killed worker are free again.
   */
  readonly concurrencyLeaseMs: number;
  /** Family uploads: size limits, upload tokens, zip limits, DICOM parse time limit. */
  readonly uploads: UploadConfig;
  /**
   * The longest a stop may take in all (`SHUTDOWN_TIMEOUT_MS`, default {@link DEFAULT_SHUTDOWN_TIMEOUT_MS}):
   * past it the process logs the steps still pending and exits with status 1.
   */
  readonly shutdownTimeoutMs: number;
  /** The opinion PDF's fonts, report deliveries, notifications and webhooks. */
  readonly opinion: OpinionDeliveryConfig;
  /**
   * Hours a blob file no `blobs` row names is kept before the workers' orphan sweep removes it
   * (`BLOB_ORPHAN_GRACE_HOURS`, default 24; `src/blobs/orphan-sweep.ts`): longer than any transaction
   * that could still record it. Temp files: the longer of this and 24 h.
   */
  readonly blobOrphanGraceHours: number;
}

/** Fonts of the opinion PDF (default: assets/fonts), delivery and webhook retry policies. */
export interface OpinionDeliveryConfig {
  readonly reportFonts: { readonly regular?: string; readonly bold?: string; readonly fallback?: string };
  /** Attempts of a delivery job (exponential backoff from `deliveryBackoffMs`) before it is failed and the case manager alerted. */
  readonly deliveryAttempts: number;
  readonly deliveryBackoffMs: number;
  /**
   * How long a delivery may wait, in all, for a recipient paused by its circuit breaker (a
   * `Retry-After`, an outage) before its attempts count again: longer than a pull's, since a signed
   * opinion can wait out an EHR's maintenance window where a record pull holds up a case.
   */
  readonly deliveryMaxPauseWaitMs: number;
  readonly deliveryConcurrency: number;
  /** Attempts per webhook event (exponential backoff from `webhookBackoffMs`). */
  readonly webhookAttempts: number;
  readonly webhookBackoffMs: number;
  /** Failed events in a row after which a subscriber is disabled and reported. */
  readonly webhookDisableAfter: number;
  readonly webhookTimeoutMs: number;
  /** How often the outbox is drained when nothing kicks it. */
  readonly notifyPollMs: number;
  /**
   * Days finished outbox rows are kept (`NOTIFY_OUTBOX_RETENTION_DAYS`, default 30): webhook deliveries
   * delivered, failed or skipped, and processed events, older than this are pruned by the notify worker.
   */
  readonly notifyOutboxRetentionDays: number;
}

/** Limits of family uploads (`POST /api/cases/:id/uploads`) and their ingest. */
export interface UploadConfig {
  /** Largest file of an upload (a zip counts as one file); 413 above. */
  readonly maxFileBytes: number;
  /** Most bytes uploaded to one case over all its uploads; 413 above. */
  readonly maxCaseBytes: number;
  /** Lifetime of a per-case upload token. */
  readonly tokenTtlSeconds: number;
  /** Most entries in a zip (files and folders); more refuses the archive. */
  readonly maxZipEntries: number;
  /** Highest inflated/compressed ratio of a zip (zip bomb); higher refuses the archive. */
  readonly maxZipRatio: number;
  /** Hard time limit of parsing one DICOM header (worker thread terminated after it). */
  readonly dicomParseTimeoutMs: number;
}

/** A configuration error names every bad variable, so the operator can fix them in one go. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Reads and validates the environment. Throws {@link ConfigError} naming each bad variable.
 * Values are never echoed back (a secret may be among them).
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`));
  }
  const e = parsed.data;
  const problems: string[] = [];
  const dataDir = path.resolve(e.DATA_DIR);
  const production = e.NODE_ENV === 'production';
  const usingDevelopmentSecret = !e.AUTH_JWT_SECRET && !e.AUTH_JWKS_URL;
  if (usingDevelopmentSecret && production) {
    problems.push('AUTH_JWT_SECRET or AUTH_JWKS_URL: one of them must be set in production so /api requests can be authenticated');
  }
  if (!e.DATABASE_URL && production) {
    problems.push(
      'DATABASE_URL: must be set in production (postgres://…). Without it the embedded PGlite database is used, ' +
        'which never fsyncs (a crash or power loss can lose or corrupt records) and runs in one process only: it is for trying the service, not for production.',
    );
  } else if (!e.DATABASE_URL && e.ROLE !== 'all') {
    problems.push(
      `ROLE: "${e.ROLE}" needs DATABASE_URL. Without it the embedded PGlite database is used, which only one process can open, so API and workers must run together (ROLE=all).`,
    );
  }
  if (e.AUTH_JWKS_URL && production) {
    // The identity provider signs tokens for other applications too: without an audience and issuer
    // to check, any token it issued (with a roles claim) would be accepted here (RFC 8725 §3.9).
    if (!e.AUTH_AUDIENCE) problems.push('AUTH_AUDIENCE: must be set in production with AUTH_JWKS_URL (the aud of tokens issued for this service)');
    if (!e.AUTH_ISSUER) problems.push('AUTH_ISSUER: must be set in production with AUTH_JWKS_URL (the iss of the identity provider)');
    // Keys fetched over plain HTTP could be swapped on the way, and tokens minted with them.
    if (new URL(e.AUTH_JWKS_URL).protocol !== 'https:') problems.push('AUTH_JWKS_URL: must be an https URL in production');
  }
  if (!e.SECRETS_KEY && production) {
    problems.push('SECRETS_KEY: must be set in production (32 random bytes, base64) to encrypt endpoint secrets at rest');
  }
  if (!isValidTimeZone(e.PROGRAM_TIME_ZONE)) problems.push('PROGRAM_TIME_ZONE: not an IANA time zone');
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    role: e.ROLE,
    production,
    port: e.PORT,
    host: e.HOST,
    metricsPort: e.METRICS_PORT,
    databaseUrl: e.DATABASE_URL,
    databasePoolSize: e.DATABASE_POOL_SIZE,
    redisUrl: e.REDIS_URL,
    queuePrefix: e.QUEUE_PREFIX,
    dataDir,
    logLevel: e.LOG_LEVEL,
    auth: {
      jwtSecret: usingDevelopmentSecret ? developmentSecret(dataDir, 'dev-jwt-secret') : e.AUTH_JWT_SECRET,
      usingDevelopmentSecret,
      jwksUrl: e.AUTH_JWKS_URL,
      issuer: e.AUTH_ISSUER,
      audience: e.AUTH_AUDIENCE,
      rolesClaim: e.AUTH_ROLES_CLAIM,
    },
    bodyLimit: e.BODY_LIMIT,
    specialistCaseAccess: e.SPECIALIST_CASE_ACCESS,
    ehrCaseAccess: e.EHR_CASE_ACCESS,
    programTimeZone: e.PROGRAM_TIME_ZONE,
    pullConcurrency: e.PULL_CONCURRENCY,
    attachmentConcurrency: e.ATTACHMENT_CONCURRENCY,
    jobLockMs: e.JOB_LOCK_MS,
    maxAttachmentBytes: e.MAX_ATTACHMENT_BYTES,
    reconcileEveryMs: e.RECONCILE_EVERY_MS,
    pullJobBackoffMs: e.PULL_JOB_BACKOFF_MS,
    attachmentJobBackoffMs: e.ATTACHMENT_JOB_BACKOFF_MS,
    pullMaxPauseWaitMs: e.PULL_MAX_PAUSE_WAIT_MS,
    ...(e.ASSEMBLY_MEMORY_MB !== undefined ? { assemblyMemoryMb: e.ASSEMBLY_MEMORY_MB } : {}),
    assemblyThreadIdleMs: e.ASSEMBLY_THREAD_IDLE_MS,
    pdfThreadIdleMs: e.PDF_THREAD_IDLE_MS,
    fhirRequestTimeoutMs: e.FHIR_REQUEST_TIMEOUT_MS,
    httpRequestTimeoutMs: e.HTTP_REQUEST_TIMEOUT_MS ?? defaultHttpRequestTimeoutMs(e.MAX_UPLOAD_FILE_BYTES),
    ...(e.OUTBOUND_PROXY_URL ? { outboundProxy: outboundProxy(e.OUTBOUND_PROXY_URL, e.OUTBOUND_NO_PROXY) } : {}),
    concurrencyLeaseMs: e.CONCURRENCY_LEASE_MS,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    blobOrphanGraceHours: e.BLOB_ORPHAN_GRACE_HOURS,
    uploads: {
      maxFileBytes: e.MAX_UPLOAD_FILE_BYTES,
      maxCaseBytes: e.MAX_UPLOAD_CASE_BYTES,
      tokenTtlSeconds: e.UPLOAD_TOKEN_TTL_SECONDS,
      maxZipEntries: e.MAX_ZIP_ENTRIES,
      maxZipRatio: e.MAX_ZIP_RATIO,
      dicomParseTimeoutMs: e.DICOM_PARSE_TIMEOUT_MS,
    },
    opinion: {
      reportFonts: { regular: e.REPORT_FONT_PATH, bold: e.REPORT_BOLD_FONT_PATH, fallback: e.REPORT_FALLBACK_FONT_PATH },
      deliveryAttempts: e.DELIVERY_ATTEMPTS,
      deliveryBackoffMs: e.DELIVERY_BACKOFF_MS,
      deliveryMaxPauseWaitMs: e.DELIVERY_MAX_PAUSE_WAIT_MS,
      deliveryConcurrency: e.DELIVERY_CONCURRENCY,
      webhookAttempts: e.WEBHOOK_ATTEMPTS,
      webhookBackoffMs: e.WEBHOOK_BACKOFF_MS,
      webhookDisableAfter: e.WEBHOOK_DISABLE_AFTER,
      webhookTimeoutMs: e.WEBHOOK_TIMEOUT_MS,
      notifyPollMs: e.NOTIFY_POLL_MS,
      notifyOutboxRetentionDays: e.NOTIFY_OUTBOX_RETENTION_DAYS,
    },
    secretsKey: e.SECRETS_KEY
      ? Buffer.from(e.SECRETS_KEY, 'base64')
      : Buffer.from(developmentSecret(dataDir, 'dev-secrets-key'), 'base64url'),
  };
}

function isValidTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** File under DATA_DIR holding the development HS256 secret shared by the service and `npm run token`. */
export function developmentSecretPath(dataDir: string): string {
  return path.join(dataDir, 'dev-jwt-secret');
}

/**
 * Outside production, with no secret configured, the service uses a random 32-byte secret kept
 * (mode 0600) under DATA_DIR, so `npm start` works with zero set-up; for the JWT secret this also
 * lets `npm run token` mint tokens the running service accepts.
 */
function developmentSecret(dataDir: string, name: string): string {
  const file = path.join(dataDir, name);
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    fs.mkdirSync(dataDir, { recursive: true });
    const secret = randomBytes(32).toString('base64url');
    try {
      fs.writeFileSync(file, secret, { mode: 0o600, flag: 'wx' });
      return secret;
    } catch {
      // Another process created it first: use theirs.
      return fs.readFileSync(file, 'utf8').trim();
    }
  }
}
