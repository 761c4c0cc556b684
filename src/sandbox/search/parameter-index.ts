/**
 * An inverted index for one search parameter of one resource type: search value → resource ids.
 *
 * Built lazily on the first search that uses the parameter, then kept up to date on every write
 * (the repository calls {@link ParameterIndex.replace}), so a search never rescans the whole type.
 */
import type { Resource } from '@medplum/fhirtypes';
import type { IndexedParameterKind } from './search-values';

export class ParameterIndex {
  private readonly idsByValue = new Map<string, Set<string>>();

  constructor(
    readonly kind: IndexedParameterKind,
    private readonly valuesOf: (resource: Resource) => string[]
  ) {}

  /** Indexes every resource of the type (called once, when the index is created). */
  build(resources: Iterable<Resource>): void {
    for (const resource of resources) {
      this.add(resource);
    }
  }

  /** Keeps the index in step with a write: `before` is the stored version it replaces, if any. */
  replace(before: Resource | undefined, after: Resource | undefined): void {
    if (before) {
      this.remove(before);
    }
    if (after) {
      this.add(after);
    }
  }

  /** Ids whose values include any of `values` (an OR, as a comma-separated search value means). */
  lookup(values: readonly string[]): Set<string> {
    const ids = new Set<string>();
    for (const value of values) {
      const key = this.kind === 'token' ? value.toLowerCase() : value;
      for (const id of this.idsByValue.get(key) ?? []) {
        ids.add(id);
      }
    }
    return ids;
  }

  private add(resource: Resource): void {
    const id = resource.id as string;
    for (const value of this.valuesOf(resource)) {
      let ids = this.idsByValue.get(value);
      if (!ids) {
        ids = new Set();
        this.idsByValue.set(value, ids);
      }
      ids.add(id);
    }
  }

  private remove(resource: Resource): void {
    const id = resource.id as string;
    for (const value of this.valuesOf(resource)) {
      const ids = this.idsByValue.get(value);
      ids?.delete(id);
      if (ids?.size === 0) {
        this.idsByValue.delete(value);
      }
    }
  }
}
