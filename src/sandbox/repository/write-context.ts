/**
 * Who is writing: a client over HTTP, or the test/demo seeding the server with `load()`.
 *
 * Carried with AsyncLocalStorage because Medplum's batch processor awaits between entries, so an HTTP
 * request and a `load()` may interleave; each write must still know where it came from.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export type WriteOrigin = 'http' | 'load';

export interface WriteContext {
  readonly origin: WriteOrigin;
  /**
   * Keep `meta.lastUpdated` as given instead of stamping the server time. Only for seeding: a
   * FHIR server assigns `meta.lastUpdated` itself on every write (https://hl7.org/fhir/R4/resource.html#Meta).
   */
  readonly preserveLastUpdated: boolean;
}

const storage = new AsyncLocalStorage<WriteContext>();

const httpContext: WriteContext = { origin: 'http', preserveLastUpdated: false };

/** The current write context; outside of any, a write counts as an HTTP write. */
export function currentWriteContext(): WriteContext {
  return storage.getStore() ?? httpContext;
}

/** Runs `work` with `context` as the write context of every write it makes. */
export function runWithWriteContext<T>(context: WriteContext, work: () => Promise<T>): Promise<T> {
  return storage.run(context, work);
}
