/**
 * Search results computed once and kept for paging.
 *
 * A search runs once; its ordered result (the stored resource objects, which never change) is kept
 * under a random token and under the normalized query. Later pages, whether asked for by offset
 * (`?…&_offset=500`) or by token (`?_getpages=TOKEN&_getpagesoffset=500`), are sliced from it:
 * no second scan, and a consistent result while the client pages, like HAPI's search cache.
 *
 * A snapshot expires after `ttlMs` without being used. Looking one up by query also requires that
 * nothing it depends on was written since (the repository's version counter), so a new search after
 * a write sees the write.
 *
 * @see https://hl7.org/fhir/R4/http.html#paging
 */
import { randomBytes } from 'node:crypto';
import type { Resource } from '@medplum/fhirtypes';
import type { IncludeRequest } from '../search/includes';

export interface SearchSnapshot {
  readonly token: string;
  /** Normalized query, e.g. `Observation?patient=Patient%2F1` or `Patient/1/$everything?_type=…`. */
  readonly queryKey: string;
  /** Path and normalized query relative to the base, used to build self and offset links. */
  readonly selfPath: string;
  readonly resources: readonly Resource[];
  readonly includes: IncludeRequest | undefined;
  /** Resource types a client must be allowed to read to fetch a page (SMART scopes) … */
  readonly resourceTypes: readonly string[];
  /** … with this permission: `s` for a search, `r` for `$everything`. */
  readonly permission: 'r' | 's';
  /** Repository version the result was computed at. */
  readonly version: number;
  lastUsedAt: number;
}

export type NewSnapshot = Omit<SearchSnapshot, 'token' | 'lastUsedAt'>;

export class SearchSnapshotStore {
  private readonly byToken = new Map<string, SearchSnapshot>();
  private readonly tokenByQuery = new Map<string, string>();

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number,
    private readonly maxSnapshots = 1000
  ) {}

  /** The snapshot for a token, if it has not expired. */
  byTokenIfLive(token: string): SearchSnapshot | undefined {
    const snapshot = this.byToken.get(token);
    if (!snapshot || this.isExpired(snapshot)) {
      return undefined;
    }
    snapshot.lastUsedAt = this.now();
    return snapshot;
  }

  /** The snapshot for a normalized query if it is live and computed at `version`. */
  byQueryIfCurrent(queryKey: string, version: number): SearchSnapshot | undefined {
    const token = this.tokenByQuery.get(queryKey);
    const snapshot = token ? this.byTokenIfLive(token) : undefined;
    return snapshot && snapshot.version === version ? snapshot : undefined;
  }

  add(snapshot: NewSnapshot): SearchSnapshot {
    this.evictExpired();
    const stored: SearchSnapshot = { ...snapshot, token: randomBytes(16).toString('hex'), lastUsedAt: this.now() };
    this.byToken.set(stored.token, stored);
    this.tokenByQuery.set(stored.queryKey, stored.token);
    while (this.byToken.size > this.maxSnapshots) {
      const oldest = this.byToken.keys().next().value as string;
      this.remove(oldest);
    }
    return stored;
  }

  clear(): void {
    this.byToken.clear();
    this.tokenByQuery.clear();
  }

  get size(): number {
    return this.byToken.size;
  }

  private isExpired(snapshot: SearchSnapshot): boolean {
    return this.now() - snapshot.lastUsedAt > this.ttlMs;
  }

  private evictExpired(): void {
    for (const [token, snapshot] of this.byToken) {
      if (this.isExpired(snapshot)) {
        this.remove(token);
      }
    }
  }

  private remove(token: string): void {
    const snapshot = this.byToken.get(token);
    this.byToken.delete(token);
    if (snapshot && this.tokenByQuery.get(snapshot.queryKey) === token) {
      this.tokenByQuery.delete(snapshot.queryKey);
    }
  }
}
