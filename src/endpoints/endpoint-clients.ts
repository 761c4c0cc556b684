import type { Redis } from 'ioredis';
import { FhirEndpointClient, type FhirClientDeps, type FhirClientEvent } from '../fhir';
import type { EndpointConnection } from '../fhir/endpoint';

/**
 * One {@link FhirEndpointClient} per endpoint per process (each owns a keep-alive pool), rebuilt
 * when the endpoint's registration changes. Events go to every listener (progress counters).
 */
export class EndpointClients {
  private readonly clients = new Map<string, { version: string; client: FhirEndpointClient }>();
  private readonly listeners = new Set<(endpointId: string, event: FhirClientEvent) => void>();

  constructor(
    private readonly redis: Redis,
    private readonly keyPrefix: string,
    private readonly extra: Partial<FhirClientDeps> = {},
  ) {}

  /** `version` changes when the registration does (its updated_at), so a stale client is replaced. */
  get(connection: EndpointConnection, version: string): FhirEndpointClient {
    const cached = this.clients.get(connection.id);
    if (cached && cached.version === version) return cached.client;
    if (cached) void cached.client.close();
    const client = new FhirEndpointClient(connection, {
      ...this.extra,
      redis: this.redis,
      keyPrefix: this.keyPrefix,
      onEvent: (event) => {
        for (const listener of this.listeners) listener(connection.id, event);
        this.extra.onEvent?.(event);
      },
    });
    this.clients.set(connection.id, { version, client });
    return client;
  }

  onEvent(listener: (endpointId: string, event: FhirClientEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async closeAll(): Promise<void> {
    const all = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(all.map((c) => c.client.close()));
  }
}
