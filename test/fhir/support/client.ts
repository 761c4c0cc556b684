import type { Redis } from 'ioredis';
import { seededRandom } from '../../../src/fhir/backoff';
import type { EndpointConnection } from '../../../src/fhir/endpoint';
import type { FhirClientEvent } from '../../../src/fhir/events';
import { FhirEndpointClient, type FhirClientDeps } from '../../../src/fhir/fhir-client';

let counter = 0;

export interface ClientHarness {
  readonly client: FhirEndpointClient;
  readonly events: FhirClientEvent[];
  /** Delays the client asked to sleep (nothing really sleeps). */
  readonly sleeps: number[];
}

/** A client for a local test server: insecure http allowed, no real sleeping, seeded jitter. */
export function makeClient(
  redis: Redis,
  prefix: string,
  baseUrl: string,
  endpoint: Partial<EndpointConnection> = {},
  deps: Partial<FhirClientDeps> = {},
): ClientHarness {
  counter += 1;
  const events: FhirClientEvent[] = [];
  const sleeps: number[] = [];
  const client = new FhirEndpointClient(
    {
      id: `ep-${counter}`,
      baseUrl,
      auth: { type: 'none' },
      maxRequestsPerSecond: 1000,
      maxConcurrency: 8,
      allowInsecureHttp: true,
      timeoutMs: 5000,
      ...endpoint,
    },
    {
      redis,
      keyPrefix: prefix,
      random: seededRandom(7),
      onEvent: (e) => events.push(e),
      ...deps,
      // The client's sleeps are simulated; a Retry-After's hold of the endpoint would be waited in real time.
      limiter: { holdOnRetryAfter: false, ...deps.limiter },
      // Recorded, then passed to the test's own sleep if it has one (one that advances its clock, say).
      sleep: async (ms) => {
        sleeps.push(ms);
        await deps.sleep?.(ms);
      },
    },
  );
  return { client, events, sleeps };
}
