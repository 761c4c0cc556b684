/**
 * Medplum's `MemoryRepository`, with what a sandbox FHIR server needs on top:
 * - searches go through {@link SearchEngine} (indexes + Medplum's matcher) instead of a full scan
 *   that deep-clones every resource of the type;
 * - the server, not the client, stamps `meta.lastUpdated` (MemoryRepository keeps a client's value
 *   on create), from an injectable clock so tests can control time;
 * - every write is announced (request log, index upkeep) and can be undone (atomic transactions);
 * - per-type change counters, so cached search snapshots know when they are stale.
 *
 * Storage stays Medplum's: this class reads the stored objects through `storedResources` rather
 * than cloning them. Stored objects are never mutated (Medplum stores a new object per version),
 * so callers may hold on to them as a consistent snapshot, but must not modify them.
 *
 * @see https://hl7.org/fhir/R4/http.html
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { SearchRequest, WithId } from '@medplum/core';
import { badRequest, deepClone, notFound, OperationOutcomeError, preconditionFailed, stringify } from '@medplum/core';
import type { CreateResourceOptions, ReadHistoryOptions, UpdateResourceOptions } from '@medplum/fhir-router';
import { MemoryRepository } from '@medplum/fhir-router';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { SearchEngine } from '../search/search-engine';
import { currentWriteContext, type WriteContext, type WriteOrigin } from './write-context';
import { WriteJournal } from './write-journal';

export type WriteKind = 'create' | 'update' | 'delete';

/** One change to the store, as announced to {@link SandboxRepository.onWrite} listeners. */
export interface WriteEvent {
  readonly kind: WriteKind;
  readonly resourceType: string;
  readonly id: string;
  /** The stored resource after the write (undefined for a delete). Do not modify. */
  readonly resource: Resource | undefined;
  readonly origin: WriteOrigin;
}

const EMPTY_TYPE = new Map<string, Resource>();

/** FHIR id: 1–64 of A–Z a–z 0–9 - . (https://hl7.org/fhir/R4/datatypes.html#id). */
function isValidId(id: unknown): id is string {
  return typeof id === 'string' && /^[A-Za-z0-9\-.]{1,64}$/.test(id);
}

export class SandboxRepository extends MemoryRepository {
  readonly searchEngine: SearchEngine;
  private readonly journals = new AsyncLocalStorage<WriteJournal>();
  private readonly listeners: ((event: WriteEvent) => void)[] = [];
  private readonly typeVersions = new Map<string, number>();
  private readonly positions = new Map<string, number>();
  private nextPosition = 0;
  private globalVersion = 0;
  private serializableTail: Promise<unknown> = Promise.resolve();

  constructor(private readonly now: () => number = Date.now) {
    super();
    this.searchEngine = new SearchEngine({
      resourcesOfType: (resourceType) => this.storedResources().get(resourceType) ?? EMPTY_TYPE,
      positionOf: (resourceType, id) => this.positions.get(`${resourceType}/${id}`) ?? Number.MAX_SAFE_INTEGER,
    });
  }

  /** Subscribes to every write; returns the unsubscribe function. */
  onWrite(listener: (event: WriteEvent) => void): () => void {
    this.listeners.push(listener);
    return () => {
      const index = this.listeners.indexOf(listener);
      if (index >= 0) {
        this.listeners.splice(index, 1);
      }
    };
  }

  /** The stored resource (not a copy; do not modify), or undefined. */
  getStored(resourceType: string, id: string): Resource | undefined {
    return this.storedResources().get(resourceType)?.get(id);
  }

  /** Stored resources of a type, in insertion order (not copies; do not modify). */
  storedOfType(resourceType: string): ReadonlyMap<string, Resource> {
    return this.storedResources().get(resourceType) ?? EMPTY_TYPE;
  }

  /** Resource types that currently have at least one resource. */
  storedTypes(): string[] {
    return [...this.storedResources().entries()].filter(([, byId]) => byId.size > 0).map(([type]) => type);
  }

  /** Changes whenever a resource of `resourceType` is written (or, without a type, any resource). */
  versionOf(resourceType?: string): number {
    return resourceType === undefined ? this.globalVersion : (this.typeVersions.get(resourceType) ?? 0);
  }

  /**
   * Runs `work` recording a journal of its writes; if `work` throws, every write is undone. Write
   * listeners hear about the writes only once `work` has succeeded.
   */
  async atomically<T>(work: () => Promise<T>): Promise<T> {
    const journal = new WriteJournal();
    let result: T;
    try {
      result = await this.journals.run(journal, work);
    } catch (err) {
      this.rollback(journal);
      throw err;
    }
    journal.pendingEvents.forEach((event) => this.announce(event));
    return result;
  }

  /**
   * Create: the server assigns the id (https://hl7.org/fhir/R4/http.html#create), except inside a
   * batch/transaction, where Medplum's batch processor has already assigned one (`assignedId`).
   * MemoryRepository would keep whatever id the client sent, overwriting an existing resource.
   */
  override async createResource<T extends Resource>(resource: T, options?: CreateResourceOptions): Promise<WithId<T>> {
    const id = options?.assignedId && resource.id ? resource.id : this.generateId();
    return this.store({ ...resource, id });
  }

  /** Update (or create with a client-chosen id), honouring `If-Match` (https://hl7.org/fhir/R4/http.html#concurrency). */
  override async updateResource<T extends Resource>(resource: T, options?: UpdateResourceOptions): Promise<WithId<T>> {
    if (!resource.id) {
      throw new OperationOutcomeError(badRequest('Missing id'));
    }
    if (options?.ifMatch) {
      const existing = this.getStored(resource.resourceType, resource.id);
      if (!existing) {
        throw new OperationOutcomeError(notFound);
      }
      if (existing.meta?.versionId !== options.ifMatch) {
        throw new OperationOutcomeError(preconditionFailed);
      }
    }
    return this.store({ ...resource, id: resource.id });
  }

  override async deleteResource(resourceType: string, id: string): Promise<void> {
    const before = this.getStored(resourceType, id);
    this.recordInJournal(resourceType, id, before);
    await super.deleteResource(resourceType, id);
    this.afterWrite('delete', resourceType, id, before, undefined, currentWriteContext().origin);
  }

  /**
   * Bulk insert for seeding (`load()` of resources that all have ids and need no reference
   * rewriting): the same result as a transaction of `PUT Type/id` entries, about 10× faster,
   * because it skips Medplum's per-entry routing and its three copies per write. Resources are
   * validated first, so either all are stored or none. Returns the stored objects (do not modify);
   * `onSerialized` gets each one with its JSON (which seeding computes anyway).
   */
  seed(resources: readonly Resource[], context: WriteContext, onSerialized?: (stored: Resource, json: string) => void): Resource[] {
    for (const resource of resources) {
      if (typeof resource.resourceType !== 'string' || !isValidId(resource.id)) {
        throw new OperationOutcomeError(badRequest(`Cannot seed a resource without a valid id: ${resource.resourceType}/${resource.id}`));
      }
    }
    const stored: Resource[] = [];
    const store = this.storedResources();
    const history: Map<string, Map<string, Resource[]>> = this['history'];
    for (const resource of resources) {
      const meta = { ...resource.meta, versionId: randomUUID() };
      if (!context.preserveLastUpdated || !meta.lastUpdated) {
        meta.lastUpdated = new Date(this.now()).toISOString();
      }
      const json = stringify({ ...resource, meta });
      const copy = JSON.parse(json) as Resource & { id: string };
      const before = this.getStored(copy.resourceType, copy.id);
      this.recordInJournal(copy.resourceType, copy.id, before);
      let byId = store.get(copy.resourceType);
      if (!byId) {
        byId = new Map();
        store.set(copy.resourceType, byId);
      }
      byId.set(copy.id, copy);
      let typeHistory = history.get(copy.resourceType);
      if (!typeHistory) {
        typeHistory = new Map();
        history.set(copy.resourceType, typeHistory);
      }
      const versions = typeHistory.get(copy.id);
      if (versions) {
        versions.push(copy);
      } else {
        typeHistory.set(copy.id, [copy]);
      }
      this.afterWrite(before ? 'update' : 'create', copy.resourceType, copy.id, before, copy, context.origin);
      onSerialized?.(copy, json);
      stored.push(copy);
    }
    return stored;
  }

  /**
   * Medplum runs conditional create/update/delete/patch in a `serializable` transaction, so that two
   * concurrent `If-None-Exist` creates cannot both create. MemoryRepository just calls the callback;
   * the search and the create are separated by awaits, so exactly-once would rest on no other request
   * ever running in between. Here serializable callbacks run one at a time, which makes it explicit.
   */
  override withTransaction<TResult>(callback: (client: undefined) => Promise<TResult>, options?: { serializable?: boolean }): Promise<TResult> {
    if (!options?.serializable) {
      return callback(undefined);
    }
    const run = this.serializableTail.then(() => callback(undefined));
    this.serializableTail = run.catch(() => undefined);
    return run;
  }

  /** Search through the indexed engine; returns copies, like MemoryRepository. */
  override async search<T extends Resource>(searchRequest: SearchRequest<T>): Promise<Bundle<WithId<T>>> {
    const matches = this.searchEngine.execute(searchRequest);
    const offset = searchRequest.offset ?? 0;
    const page = searchRequest.count === undefined ? matches.slice(offset) : matches.slice(offset, offset + searchRequest.count);
    return {
      resourceType: 'Bundle',
      type: 'searchset',
      entry: page.length ? page.map((resource) => ({ resource: deepClone(resource) as WithId<T> })) : undefined,
      total: matches.length,
    };
  }

  override async readResource<T extends Resource>(resourceType: string, id: string): Promise<T> {
    const stored = this.getStored(resourceType, id);
    if (!stored) {
      throw new OperationOutcomeError(notFound);
    }
    return deepClone(stored) as T;
  }

  /**
   * Version history, newest first. MemoryRepository reverses its stored history array in place on
   * every call (so the order flips from one call to the next); this returns a reversed copy and
   * applies `_count` / `_offset`.
   */
  override async readHistory<T extends Resource>(resourceType: string, id: string, options?: ReadHistoryOptions): Promise<Bundle<WithId<T>>> {
    if (!this.getStored(resourceType, id)) {
      throw new OperationOutcomeError(notFound);
    }
    const versions = [...(this.historyOf(resourceType, id) ?? [])].reverse();
    const offset = options?.offset ?? 0;
    const page = options?.limit === undefined ? versions.slice(offset) : versions.slice(offset, offset + options.limit);
    return {
      resourceType: 'Bundle',
      type: 'history',
      total: versions.length,
      entry: page.map((version) => ({ resource: deepClone(version) as WithId<T> })),
    };
  }

  /** Removes every resource and its history. */
  override clear(): void {
    super.clear();
    this.positions.clear();
    this.searchEngine.clear();
    this.globalVersion++;
    this.typeVersions.clear();
  }

  /** Every create and update ends here: stamp meta, journal, store (Medplum), announce. */
  private async store<T extends Resource>(resource: T & { id: string }): Promise<WithId<T>> {
    const context = currentWriteContext();
    const meta = { ...resource.meta };
    delete meta.versionId;
    if (!context.preserveLastUpdated || !meta.lastUpdated) {
      meta.lastUpdated = new Date(this.now()).toISOString();
    }
    const before = this.getStored(resource.resourceType, resource.id);
    this.recordInJournal(resource.resourceType, resource.id, before);
    const written = await super.createResource({ ...resource, meta });
    const stored = this.getStored(written.resourceType, written.id) as Resource;
    this.afterWrite(before ? 'update' : 'create', written.resourceType, written.id, before, stored, context.origin);
    return written;
  }

  private recordInJournal(resourceType: string, id: string | undefined, before: Resource | undefined): void {
    const journal = this.journals.getStore();
    if (journal && id) {
      journal.recordFirstTouch({ resourceType, id, before, historyLength: this.historyOf(resourceType, id)?.length ?? 0 });
    }
  }

  private afterWrite(
    kind: WriteKind,
    resourceType: string,
    id: string,
    before: Resource | undefined,
    after: Resource | undefined,
    origin: WriteOrigin
  ): void {
    const key = `${resourceType}/${id}`;
    if (!before && after) {
      this.positions.set(key, this.nextPosition++);
    } else if (!after) {
      this.positions.delete(key);
    }
    this.searchEngine.onWrite(resourceType, before, after);
    this.bumpVersion(resourceType);
    const event: WriteEvent = { kind, resourceType, id, resource: after, origin };
    const journal = this.journals.getStore();
    if (journal) {
      journal.pendingEvents.push(event);
    } else {
      this.announce(event);
    }
  }

  private announce(event: WriteEvent): void {
    for (const listener of this.listeners) {
      listener(event);
    }
  }

  private rollback(journal: WriteJournal): void {
    for (const entry of journal.entriesToUndo()) {
      const byId = this.storedResources().get(entry.resourceType);
      const current = byId?.get(entry.id);
      if (entry.before) {
        let target = byId;
        if (!target) {
          target = new Map();
          this.storedResources().set(entry.resourceType, target);
        }
        target.set(entry.id, entry.before);
        if (!current) {
          this.positions.set(`${entry.resourceType}/${entry.id}`, this.nextPosition++);
        }
      } else {
        byId?.delete(entry.id);
        this.positions.delete(`${entry.resourceType}/${entry.id}`);
      }
      this.historyOf(entry.resourceType, entry.id)?.splice(entry.historyLength);
      this.searchEngine.onWrite(entry.resourceType, current, entry.before);
      this.bumpVersion(entry.resourceType);
    }
  }

  private bumpVersion(resourceType: string): void {
    this.globalVersion++;
    this.typeVersions.set(resourceType, (this.typeVersions.get(resourceType) ?? 0) + 1);
  }

  /** MemoryRepository's private store (type → id → resource), read without copying. */
  private storedResources(): Map<string, Map<string, Resource>> {
    return this['resources'];
  }

  private historyOf(resourceType: string, id: string): Resource[] | undefined {
    const history: Map<string, Map<string, Resource[]>> = this['history'];
    return history.get(resourceType)?.get(id);
  }
}
