/**
 * The JSON of a stored resource as this server sends it, cached per stored object.
 *
 * Stored objects are immutable (every write stores a new object), so the caches are WeakMaps keyed
 * by object identity: no invalidation. Search pages are built from cached UTF-8 Buffers of whole
 * Bundle entries, so serving a 500-resource page is one `Buffer.concat` (no JSON, no encoding).
 *
 * One rewrite happens on the way out: an Attachment whose `url` is a relative `Binary/{id}`
 * (fixtures cannot know the ephemeral port) is sent as this server's absolute Binary URL, so
 * clients get `DocumentReference.content.attachment.url = http://127.0.0.1:PORT/fhir/Binary/{id}`.
 *
 * @see https://hl7.org/fhir/R4/datatypes.html#Attachment
 * @see https://hl7.org/fhir/R4/binary.html
 */
import type { Resource } from '@medplum/fhirtypes';

const RELATIVE_BINARY_URL = /^Binary\/[A-Za-z0-9\-.]{1,64}$/;

export class WireJsonCache {
  private readonly cache = new WeakMap<object, string>();
  private readonly matchEntries = new WeakMap<object, Buffer>();

  constructor(private readonly baseUrl: string) {}

  /** JSON of a stored (never modified) resource; computed once per stored version. */
  storedJson(resource: Resource): string {
    let json = this.cache.get(resource);
    if (json === undefined) {
      json = this.toJson(resource);
      this.cache.set(resource, json);
    }
    return json;
  }

  /** `{"fullUrl":…,"resource":…,"search":{"mode":"match"}}` of a stored resource, as UTF-8. */
  matchEntry(resource: Resource): Buffer {
    let entry = this.matchEntries.get(resource);
    if (entry === undefined) {
      entry = Buffer.from(this.entryJson(resource, 'match'), 'utf8');
      this.matchEntries.set(resource, entry);
    }
    return entry;
  }

  /** A Bundle entry of a stored resource as JSON text (not cached). */
  entryJson(resource: Resource, mode: 'match' | 'include'): string {
    const fullUrl = JSON.stringify(`${this.baseUrl}/${resource.resourceType}/${resource.id}`);
    const json = this.cache.get(resource) ?? this.toJson(resource);
    return `{"fullUrl":${fullUrl},"resource":${json},"search":{"mode":"${mode}"}}`;
  }

  /** Prepares the search entry of a just-seeded resource from its JSON (`JSON.stringify(resource)`). */
  prime(resource: Resource, json: string): void {
    if (!json.includes('"url":"Binary/')) {
      this.cache.set(resource, json);
    }
    this.matchEntry(resource);
    this.cache.delete(resource);
  }

  /** JSON of any resource (not cached: for copies that Medplum's router returns). */
  toJson(resource: Resource): string {
    const json = JSON.stringify(resource);
    if (!json.includes('"url":"Binary/')) {
      return json;
    }
    return JSON.stringify(this.withAbsoluteBinaryUrls(resource));
  }

  private withAbsoluteBinaryUrls(value: unknown): unknown {
    if (Array.isArray(value)) {
      return value.map((item) => this.withAbsoluteBinaryUrls(item));
    }
    if (value === null || typeof value !== 'object') {
      return value;
    }
    const copy: Record<string, unknown> = {};
    for (const [key, child] of Object.entries(value)) {
      copy[key] = this.withAbsoluteBinaryUrls(child);
    }
    if ('contentType' in copy && typeof copy.url === 'string' && RELATIVE_BINARY_URL.test(copy.url)) {
      copy.url = `${this.baseUrl}/${copy.url}`;
    }
    return copy;
  }
}
