import { AsyncLocalStorage } from 'node:async_hooks';
import winston from 'winston';

/**
 * Structured JSON logging with PHI kept out by construction.
 *
 * Rules (see ARCHITECTURE.md, "PHI and logs"):
 * - Messages are constant strings ("case created"), never interpolated with data.
 * - Metadata passes an allow-list of keys whose values are ids, counts, hashes, codes and timings.
 *   Any other key is kept but its value is replaced by "[redacted]", so a mistake shows up as a
 *   visible redaction rather than a leak.
 * - Every line carries the request id (or job id) of the work it belongs to.
 */

export interface LogContext {
  readonly requestId?: string;
  readonly jobId?: string;
}

const contextStore = new AsyncLocalStorage<LogContext>();

/** Runs `fn` with a log context; every line logged inside carries its ids. */
export function withLogContext<T>(context: LogContext, fn: () => T): T {
  return contextStore.run(context, fn);
}

export function currentLogContext(): LogContext | undefined {
  return contextStore.getStore();
}

/** Metadata keys whose values are safe to log: identifiers we mint, counts, hashes, timings, codes. */
const ALLOWED_KEYS = new Set([
  'requestId', 'jobId', 'caseId', 'endpointId', 'sourceId', 'pullId', 'taskId', 'attachmentId', 'uploadId', 'blobId', 'deliveryId', 'webhookId', 'userId', 'sub',
  'queue', 'jobName', 'attempt', 'attempts', 'role', 'roles', 'method', 'route', 'status', 'statusCode',
  'durationMs', 'count', 'counts', 'total', 'pages', 'resources', 'sha256', 'hash', 'bytes', 'version',
  'migration', 'migrations', 'database', 'state', 'from', 'to', 'event', 'errorName', 'errorCode', 'errorMessage',
  'port', 'host', 'backend', 'resourceType', 'reason', 'service', 'pid', 'signal',
  // Shutdown and dependency health: counts, timings, and constant names of stop steps and connections.
  'activeJobs', 'pending', 'timeoutMs', 'connection', 'downMs',
  // Ids we mint, under the name of what they identify.
  'fileId', 'recipientId', 'earlierDeliveryId', 'otherPullId',
  // Counts, sizes and versions.
  'olderVersion', 'requeued', 'placed', 'removed', 'tempFiles', 'ingestFolders', 'queriesStopped', 'budgetMb', 'assemblyMemoryMb', 'availableMemoryMb',
  // Our own enumerations and flags (outcomes, modes, states of a delivery's writes, what triggered work).
  'outcome', 'mode', 'settled', 'trigger', 'gone', 'actualSha256',
  'previousDocumentState', 'documentState', 'communicationState', 'transactionState',
  // The operator's own settings: a report font's environment variable and the file it names.
  'fontVariable', 'fontFile',
]);

/**
 * A code shaped like one (`ENOENT`, `23505`, `ERR_HTTP2_STREAM_CANCEL`, `invalid_client`): anything
 * else in an error's `code` (a library may put a value or a sentence there) is not logged as is.
 */
const ERROR_CODE = /^[A-Za-z0-9_.-]{1,40}$/;

/** A FHIR version as a server declares it (`4.0.1`, `5.0.0-ballot`). */
const FHIR_VERSION = /^[0-9][0-9A-Za-z.-]{0,19}$/;

/**
 * Keys whose values come from elsewhere (a server's issue code, a resolver's error code, the FHIR
 * version a server declares): logged only when shaped like one, else "[redacted]".
 */
const SHAPED_KEYS: ReadonlyMap<string, RegExp> = new Map([
  ['code', ERROR_CODE],
  ['fhirVersion', FHIR_VERSION],
]);

/**
 * Whether a metadata key's value is written to the log (shaped keys: when the value fits its shape).
 * A call that logs under any other key writes "[redacted]" there: `test/util/log-keys.part.ts` keeps
 * the service's own calls from doing so.
 */
export function isLoggedKey(key: string): boolean {
  return ALLOWED_KEYS.has(key) || SHAPED_KEYS.has(key);
}

const REDACTED = '[redacted]';

function redactValue(key: string, value: unknown): unknown {
  const shape = SHAPED_KEYS.get(key);
  if (shape) return typeof value === 'string' && shape.test(value) ? value : REDACTED;
  if (!ALLOWED_KEYS.has(key)) return REDACTED;
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    return redactObject(value as Record<string, unknown>, true);
  }
  return value;
}

function redactObject(obj: Record<string, unknown>, nestedCounts: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(obj)) {
    // Inside an allowed "counts"-style object the keys are resource types or states, values numbers.
    out[key] = nestedCounts && typeof value === 'number' ? value : redactValue(key, value);
  }
  return out;
}

const STRUCTURAL_KEYS = new Set(['level', 'message', 'timestamp']);

/** Where winston keeps a call's arguments after its message (triple-beam's `SPLAT`). */
const SPLAT = Symbol.for('splat');

/**
 * The call's own message, without what winston appended from its metadata: given `(msg, meta)` it
 * writes `${msg} ${meta.message}` as the line's message (and copies `meta.stack`/`meta.cause`, which
 * are not on the allow-list and so redacted below). `message` is structural and never redacted, so
 * `logger.error('x', err)` or `{ message: … }` metadata would put free text, PHI included, in the line.
 * When the suffix is not found as winston writes it, the whole message goes rather than risk it.
 */
function ownMessage(info: winston.Logform.TransformableInfo): unknown {
  const splat = info[SPLAT];
  const meta: unknown = Array.isArray(splat) ? splat[0] : undefined;
  if (meta === null || typeof meta !== 'object') return info.message;
  const merged = (meta as { message?: unknown }).message;
  if (!merged) return info.message;
  const suffix = ` ${String(merged)}`;
  return typeof info.message === 'string' && info.message.endsWith(suffix) ? info.message.slice(0, -suffix.length) : REDACTED;
}

const redactPhi = winston.format((info) => {
  info.message = ownMessage(info);
  for (const key of Object.keys(info)) {
    if (STRUCTURAL_KEYS.has(key)) continue;
    info[key] = redactValue(key, info[key]);
  }
  return info;
});

const addContext = winston.format((info) => {
  const context = contextStore.getStore();
  if (context?.requestId && info.requestId === undefined) info.requestId = context.requestId;
  if (context?.jobId && info.jobId === undefined) info.jobId = context.jobId;
  return info;
});

/** The process logger. Tests may add a transport to capture output. */
export const logger = winston.createLogger({
  level: process.env.LOG_LEVEL ?? 'info',
  format: winston.format.combine(addContext(), redactPhi(), winston.format.timestamp(), winston.format.json()),
  defaultMeta: { service: 'second-opinion-bridge', pid: process.pid },
  transports: [new winston.transports.Console({ stderrLevels: ['error', 'warn'] })],
});

export function setLogLevel(level: string): void {
  logger.level = level;
}

/**
 * Safe fields for an error: its class name, code (when shaped like one, else "[redacted]") and a
 * message with quoted or bracketed fragments removed (database and library messages may quote the
 * values that failed, and file system errors the paths, whose names a family chose).
 */
export function errorFields(err: unknown): { errorName: string; errorCode?: string; errorMessage: string } {
  const redis = redisReplyFields(err);
  if (redis) return redis;
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    const codeText = typeof code === 'string' || typeof code === 'number' ? String(code) : undefined;
    return {
      errorName: err.name,
      errorCode: codeText === undefined || ERROR_CODE.test(codeText) ? codeText : REDACTED,
      errorMessage: logMessageOf(err)?.slice(0, MAX_MESSAGE) ?? scrubMessage(err.message),
    };
  }
  return { errorName: typeof err, errorMessage: 'non-error thrown' };
}

/**
 * What Redis says in the error replies of a failover or of a server that cannot take writes, in our
 * words: the replies are Redis's own text, not data, but some hold apostrophes ("READONLY You can't
 * write against a read only replica.") that {@link scrubMessage} would take for quotes.
 * @see https://redis.io/docs/latest/develop/reference/protocol-spec/#simple-errors
 */
const REDIS_REPLIES: Readonly<Record<string, string>> = {
  READONLY: 'Redis refused a write: it is a read-only replica (a failover, or REPLICAOF)',
  LOADING: 'Redis is loading its dataset into memory',
  MASTERDOWN: 'Redis is a replica whose link with its primary is down',
  NOREPLICAS: 'Redis has too few replicas in sync to take writes',
  OOM: 'Redis is out of memory (maxmemory) and refused the command',
  MISCONF: 'Redis cannot save to disk and refuses writes',
  BUSY: 'Redis is busy running a script',
};

/**
 * An error reply of Redis (ioredis' `ReplyError`) whose code is one of {@link REDIS_REPLIES}: its
 * code, and what it means, whole. Other replies are logged as any error is.
 */
function redisReplyFields(err: unknown): { errorName: string; errorCode: string; errorMessage: string } | undefined {
  if (!(err instanceof Error) || err.name !== 'ReplyError') return undefined;
  const code = /^[A-Z]+(?= |$)/.exec(err.message)?.[0];
  const meaning = code === undefined ? undefined : REDIS_REPLIES[code];
  return code === undefined || meaning === undefined ? undefined : { errorName: err.name, errorCode: code, errorMessage: meaning };
}

const QUOTES = /["'`]/;

/** Characters of an error's message a log line keeps. */
const MAX_MESSAGE = 300;

/**
 * An error that can say what happened in this service's own words, numbers, codes and ids — nothing it
 * received: no server's text, file name or display, no id at an EHR (`Patient/<id>`: some EHRs use the
 * MRN) — gives that as `logMessage`, and it is logged whole instead of its message. Any other message
 * loses what it quotes ({@link scrubMessage}), and our prose is full of apostrophes ("the server's
 * paging does not end") that the scrubber must take for quotes in text from elsewhere ("can't read
 * Emma Garcia's CT"): it would cut such a message down to its first words, and keep what follows the
 * last apostrophe whatever it is.
 */
export interface LogMessage {
  readonly logMessage: string;
}

function logMessageOf(err: Error): string | undefined {
  const message = (err as Partial<LogMessage>).logMessage;
  return typeof message === 'string' ? message : undefined;
}

/**
 * `wrapper` (a queue's UnrecoverableError around a permanent error, say) logged as `cause` would be:
 * with its `logMessage`, when it has one. Returns `wrapper`.
 */
export function withLogMessageOf<E extends Error>(wrapper: E, cause: unknown): E {
  const message = cause instanceof Error ? logMessageOf(cause) : undefined;
  if (message !== undefined) Object.defineProperty(wrapper, 'logMessage', { value: message, enumerable: false });
  return wrapper;
}

/**
 * `message` without what it quotes: everything from its first quote character to its last goes
 * (a quoted value may itself hold quotes — `O'Brien`, `"MRN 1" scan.pdf` — so quotes are not paired),
 * and after a lone quote the rest of the message; then Postgres' `(key)=(value)` details and e-mail
 * addresses. Some words around quoted values go too: the price of never pairing the wrong quotes.
 */
function scrubMessage(message: string): string {
  let scrubbed = message;
  const first = scrubbed.search(QUOTES);
  if (first >= 0) {
    let last = scrubbed.length - 1;
    while (last > first && !QUOTES.test(scrubbed.charAt(last))) last--;
    scrubbed = last > first ? `${scrubbed.slice(0, first)}"…"${scrubbed.slice(last + 1)}` : `${scrubbed.slice(0, first)}"…`;
  }
  return scrubbed
    .replace(/\([^)]*\)=\([^)]*\)/g, '(…)=(…)')
    .replace(/[\w.+-]+@[\w-]+\.[\w.]+/g, '…@…')
    .slice(0, MAX_MESSAGE);
}
