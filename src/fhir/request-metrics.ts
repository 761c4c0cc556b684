/**
 * Prometheus metrics of this process's requests to the EHRs' FHIR servers, fed by the
 * {@link FhirClientEvent}s of its endpoint clients (`EndpointClients.onEvent`): answers by endpoint,
 * request kind and HTTP status, time to response headers, retries and waits. So "is care team B's
 * EHR slow, or refusing us?" is answered from the dashboards, not the logs.
 *
 * One registry per process ({@link fhirRequestRegistry}), served with the API's `/metrics` (roles
 * `api` and `all`) and by a worker's own metrics port (`METRICS_PORT`, role `worker`): each process
 * reports its own requests, as Prometheus expects. Labels carry endpoint ids, request kinds and
 * statuses only: never URLs, tokens, resource ids or PHI.
 * @packageDocumentation
 */
import { Counter, Histogram, Registry } from 'prom-client';
import type { FhirClientEvent } from './events';

/** This process's FHIR request metrics (not its process metrics: each server adds those once). */
export const fhirRequestRegistry = new Registry();

const requests = new Counter({
  name: 'sob_fhir_requests_total',
  help: 'Answers of the EHRs’ FHIR servers to this process, by endpoint, request kind and HTTP status (each attempt)',
  labelNames: ['endpoint', 'kind', 'status'],
  registers: [fhirRequestRegistry],
});

const duration = new Histogram({
  name: 'sob_fhir_request_duration_seconds',
  help: 'Time to the response headers of a FHIR server, by endpoint and request kind (each attempt)',
  labelNames: ['endpoint', 'kind'],
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  registers: [fhirRequestRegistry],
});

const retries = new Counter({
  name: 'sob_fhir_retries_total',
  help: 'FHIR requests of this process retried after a failed attempt (5xx, 429, network), by endpoint and request kind',
  labelNames: ['endpoint', 'kind'],
  registers: [fhirRequestRegistry],
});

const waits = new Counter({
  name: 'sob_fhir_throttled_seconds_total',
  help: 'Time this process waited before FHIR requests, by endpoint and why: our rate-limit or concurrency limit, or the server asking (429/503)',
  labelNames: ['endpoint', 'source'],
  registers: [fhirRequestRegistry],
});

/** Listener for `EndpointClients.onEvent`: counts one client event. */
export function recordFhirRequestMetrics(endpointId: string, event: FhirClientEvent): void {
  switch (event.type) {
    case 'request':
      requests.inc({ endpoint: endpointId, kind: event.kind, status: String(event.status) });
      duration.observe({ endpoint: endpointId, kind: event.kind }, event.durationMs / 1000);
      return;
    case 'retry':
      retries.inc({ endpoint: endpointId, kind: event.kind });
      return;
    case 'throttled':
      waits.inc({ endpoint: endpointId, source: event.source }, event.waitMs / 1000);
      return;
    case 'token-refreshed':
    case 'circuit-open':
      return;
  }
}
