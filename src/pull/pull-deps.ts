import type { Redis } from 'ioredis';
import type { BlobStore } from '../blobs/blob-store';
import type { Database } from '../db/database';
import type { EndpointClients } from '../endpoints/endpoint-clients';
import type { FhirClientDeps } from '../fhir';
import type { SecretBox } from '../security/secret-box';

/** What the pull workers need. {@link recordRetryEvent} is in ./retry-count. */
export interface PullWorkerDeps {
  readonly db: Database;
  readonly secrets: SecretBox;
  /** Shared Redis for token cache, rate limits and circuit breakers. */
  readonly redis: Redis;
  readonly fhirKeyPrefix: string;
  readonly blobs: BlobStore;
  /** Whole-request timeout of outbound FHIR requests. */
  readonly requestTimeoutMs: number;
  /** Largest attachment fetched (bytes). */
  readonly maxAttachmentBytes: number;
  /** Client tuning (tests shorten retry delays). */
  readonly clientOptions?: Partial<FhirClientDeps>;
  /**
   * The process's shared client per endpoint (keep-alive pool, token, limiter leases). Its events
   * must reach {@link recordRetryEvent} so tasks count their retries.
   */
  readonly clients: EndpointClients;
  /**
   * Fires when this process begins to stop (`RunningWorkers.close`, queues/index.ts): a running pull
   * task sends no new request, ends at its next page boundary and is handed back (`runPullTask`); an
   * attachment download whose request is not sent yet is withdrawn and its job handed back
   * (`fetchAttachment`), one under way goes on. Absent, a run goes on to the end of its query.
   */
  readonly stopping?: AbortSignal;
}
