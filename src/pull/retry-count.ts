import { AsyncLocalStorage } from 'node:async_hooks';
import type { FhirClientEvent } from '../fhir';

/** Retries seen by the requests made inside one {@link countingRetries} scope. */
export interface RetryCount {
  retries: number;
}

const scope = new AsyncLocalStorage<RetryCount>();

/**
 * Runs `work` so that retry events of the (shared, per-endpoint) FHIR clients it calls are
 * counted in `count`: a client emits its events in the async context of the request that caused
 * them, so concurrent tasks on one endpoint each see only their own retries.
 */
export function countingRetries<T>(count: RetryCount, work: () => Promise<T>): Promise<T> {
  return scope.run(count, work);
}

/** Listener for {@link EndpointClients.onEvent}: adds a retry to the current scope's count. */
export function recordRetryEvent(_endpointId: string, event: FhirClientEvent): void {
  if (event.type !== 'retry') return;
  const count = scope.getStore();
  if (count) count.retries += 1;
}
