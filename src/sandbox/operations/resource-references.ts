/**
 * The local resources a stored resource points at: every `Reference.reference` of the form
 * `Type/id` and every Attachment `url` that is this server's `Binary/{id}`. Cached per stored object
 * (stored objects never change), so `$everything` walks each resource once.
 */
import type { Resource } from '@medplum/fhirtypes';

const LOCAL_REFERENCE = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})$/;

export class ReferenceCache {
  private readonly cache = new WeakMap<object, readonly string[]>();

  constructor(private readonly baseUrl: string) {}

  /** `Type/id` strings referenced by `resource` (relative, or absolute to this server). */
  referencesOf(resource: Resource): readonly string[] {
    let references = this.cache.get(resource);
    if (!references) {
      const found = new Set<string>();
      this.collect(resource, found);
      references = [...found];
      this.cache.set(resource, references);
    }
    return references;
  }

  private collect(value: unknown, found: Set<string>): void {
    if (Array.isArray(value)) {
      for (const item of value) {
        this.collect(item, found);
      }
      return;
    }
    if (value === null || typeof value !== 'object') {
      return;
    }
    const record = value as Record<string, unknown>;
    for (const [key, child] of Object.entries(record)) {
      if (typeof child === 'string') {
        if (key === 'reference' || (key === 'url' && 'contentType' in record)) {
          this.addLocal(child, found);
        }
      } else if (child !== null && typeof child === 'object') {
        this.collect(child, found);
      }
    }
  }

  private addLocal(reference: string, found: Set<string>): void {
    const relative = reference.startsWith(this.baseUrl + '/') ? reference.slice(this.baseUrl.length + 1) : reference;
    if (LOCAL_REFERENCE.test(relative)) {
      found.add(relative);
    }
  }
}
