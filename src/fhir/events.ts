/**
 * Typed events of {@link FhirEndpointClient}, for the pull pipeline's counters and progress
 * display (in the manner of smart-on-fhir bulk-data-client's reporters). Events carry ids, counts,
 * codes and timings only: never URLs, tokens or bodies.
 */

/** What a request was for. */
export type FhirRequestKind =
  | 'capabilities'
  | 'read'
  | 'search'
  | 'page'
  | 'operation'
  | 'binary'
  | 'create'
  | 'update'
  | 'transaction';

/** One HTTP exchange completed (any status), per attempt. */
export interface RequestEvent {
  readonly type: 'request';
  readonly endpointId: string;
  readonly kind: FhirRequestKind;
  readonly method: string;
  readonly resourceType?: string;
  readonly status: number;
  readonly attempt: number;
  /** Time to response headers, ms. */
  readonly durationMs: number;
}

/** An attempt failed and will be retried after `delayMs`. */
export interface RetryEvent {
  readonly type: 'retry';
  readonly endpointId: string;
  readonly kind: FhirRequestKind;
  /** The attempt that failed (1-based). */
  readonly attempt: number;
  readonly delayMs: number;
  /** Short code-like reason, e.g. `http-503`, `network: econnreset`, `http-500; transient`. */
  readonly reason: string;
}

/** We waited because of politeness limits (ours) or the server asked us to slow down (429/503). */
export interface ThrottledEvent {
  readonly type: 'throttled';
  readonly endpointId: string;
  readonly source: 'rate-limit' | 'concurrency' | 'server';
  readonly waitMs: number;
}

/** This process obtained a new access token from the token endpoint. */
export interface TokenRefreshedEvent {
  readonly type: 'token-refreshed';
  readonly endpointId: string;
  readonly expiresInSeconds: number;
}

/** The endpoint's circuit is open: `opened` by this call's failure, or a call was `rejected`. */
export interface CircuitOpenEvent {
  readonly type: 'circuit-open';
  readonly endpointId: string;
  readonly cause: 'opened' | 'rejected';
  /** Epoch ms when a probe may go through. */
  readonly retryAt: number;
}

export type FhirClientEvent = RequestEvent | RetryEvent | ThrottledEvent | TokenRefreshedEvent | CircuitOpenEvent;
