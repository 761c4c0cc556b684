/**
 * Seeding a server: `server.load(input)` takes a transaction or batch Bundle (as it would be POSTed),
 * any other Bundle (collection, searchset, document…: its resources), or an array of resources.
 * Non-transaction input becomes a transaction: resources with an id are PUT (ids kept), resources
 * without one are POSTed (the server assigns ids; `urn:uuid:` fullUrls and references are rewritten).
 * It then goes through the same processor as `POST [base]`, atomically.
 *
 * Options:
 * - `preserveLastUpdated` (default true): keep `meta.lastUpdated` from the input, so fixtures can
 *   seed history for `_since` / `_lastUpdated` tests (over HTTP the server always stamps it);
 * - `attachments: 'binary'`: move inline attachment `data` of DocumentReference, DiagnosticReport and
 *   Media into Binary resources and point the attachment `url` at them (served as this server's
 *   absolute `…/Binary/{id}` URL), so the same data can be pulled both ways.
 */
import { randomUUID } from 'node:crypto';
import type { FhirRouter } from '@medplum/fhir-router';
import type { Attachment, Bundle, BundleEntry, Resource } from '@medplum/fhirtypes';
import { processBatchOrTransaction } from './operations/transaction';
import { runWithWriteContext, type WriteContext } from './repository/write-context';
import type { Bundle as R4Bundle, FhirResource as R4Resource } from 'fhir/r4';
import type { SandboxRepository } from './repository/sandbox-repository';

/**
 * A Bundle or resources, typed with Medplum's types or with `fhir/r4` (@types/fhir) as the rest of
 * the service uses; both are the same JSON.
 */
export type LoadInput = Bundle | R4Bundle | readonly (Resource | R4Resource)[];

export interface LoadOptions {
  readonly preserveLastUpdated?: boolean;
  readonly attachments?: 'as-is' | 'binary';
}

export interface LoadResult {
  /** Resources written. */
  readonly total: number;
  /** Resources written per type. */
  readonly counts: Readonly<Record<string, number>>;
  /** Ids written per type, in input order. */
  readonly ids: Readonly<Record<string, readonly string[]>>;
  /** Input `fullUrl` (e.g. `urn:uuid:…`) → `Type/id` assigned by the server. */
  readonly references: Readonly<Record<string, string>>;
}

/** Thrown when a load's transaction fails; nothing was written. */
export class SandboxLoadError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly outcome: unknown
  ) {
    super(message);
    this.name = 'SandboxLoadError';
  }
}

/**
 * Loads `input` into `repo`. `onSeeded` receives each stored resource and its JSON when the fast
 * path was taken (so the server can prepare its search entries ahead of the first search).
 */
export async function loadIntoRepository(
  repo: SandboxRepository,
  router: FhirRouter,
  input: LoadInput,
  options: LoadOptions = {},
  onSeeded?: (stored: Resource, json: string) => void
): Promise<LoadResult> {
  const bundle = toBatchBundle(input);
  const context: WriteContext = { origin: 'load', preserveLastUpdated: options.preserveLastUpdated ?? true };
  const plain = options.attachments === 'binary' ? undefined : plainPutResources(bundle);
  if (plain) {
    const stored = repo.seed(plain, context, onSeeded);
    return summarizeSeed(stored, bundle);
  }
  const copy = structuredClone(bundle);
  if (options.attachments === 'binary') {
    externalizeAttachments(copy);
  }
  return finishLoad(repo, router, copy, context);
}

/** Runs a (private copy of a) batch or transaction Bundle through the same processor as `POST [base]`. */
async function finishLoad(repo: SandboxRepository, router: FhirRouter, bundle: Bundle, context: WriteContext): Promise<LoadResult> {
  const fullUrls = (bundle.entry ?? []).map((entry) => entry.fullUrl);
  const methods = (bundle.entry ?? []).map((entry) => entry.request?.method);
  const result = await runWithWriteContext(context, () => processBatchOrTransaction(bundle, repo, router));
  if (!result.ok) {
    const text = result.outcome.issue?.map((issue) => issue.details?.text ?? issue.diagnostics).join('; ');
    throw new SandboxLoadError(`Load failed (${result.status}): ${text}`, result.status, result.outcome);
  }
  return summarize(result.response, fullUrls, methods);
}

/** The input as a batch or transaction Bundle; shares the caller's resources (copy before changing them). */
function toBatchBundle(input: LoadInput): Bundle {
  if (Array.isArray(input)) {
    return transactionOf((input as readonly Resource[]).map((resource) => ({ resource })));
  }
  const bundle = input as Bundle;
  if (bundle.resourceType !== 'Bundle') {
    throw new SandboxLoadError('load() takes a Bundle or an array of resources', 400, undefined);
  }
  if (bundle.type === 'transaction' || bundle.type === 'batch') {
    return bundle;
  }
  const entries = (bundle.entry ?? []).filter((entry) => entry.resource && entry.search?.mode !== 'outcome');
  return transactionOf(entries);
}

function transactionOf(entries: readonly BundleEntry[]): Bundle {
  return {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: entries.map(({ resource, fullUrl }) => {
      const { resourceType, id } = resource as Resource;
      if (id) {
        return { fullUrl, resource, request: { method: 'PUT', url: `${resourceType}/${id}` } };
      }
      return { fullUrl: fullUrl ?? `urn:uuid:${randomUUID()}`, resource, request: { method: 'POST', url: resourceType } };
    }),
  };
}

/**
 * The resources of a Bundle whose entries are all `PUT Type/id` of a resource with that type and id,
 * with no conditions and no `urn:` fullUrl that any resource refers to; undefined otherwise. Such a
 * Bundle can be seeded directly (see SandboxRepository.seed).
 */
function plainPutResources(bundle: Bundle): Resource[] | undefined {
  const resources: Resource[] = [];
  const localUrls = new Set<string>();
  for (const entry of bundle.entry ?? []) {
    const { request, resource } = entry;
    if (
      !resource ||
      request?.method !== 'PUT' ||
      request.url !== `${resource.resourceType}/${resource.id}` ||
      request.ifMatch ||
      request.ifNoneMatch ||
      request.ifNoneExist
    ) {
      return undefined;
    }
    if (entry.fullUrl?.startsWith('urn:')) {
      localUrls.add(entry.fullUrl);
    }
    resources.push(resource);
  }
  if (localUrls.size > 0) {
    for (const resource of resources) {
      for (const urn of JSON.stringify(resource).match(/urn:(uuid|oid):[^"\s]+/g) ?? []) {
        if (localUrls.has(urn)) {
          return undefined;
        }
      }
    }
  }
  return resources;
}

function summarizeSeed(stored: readonly Resource[], bundle: Bundle): LoadResult {
  const response: Bundle = {
    resourceType: 'Bundle',
    type: 'transaction-response',
    entry: stored.map((resource) => ({ resource, response: { status: '200' } })),
  };
  return summarize(
    response,
    (bundle.entry ?? []).map((entry) => entry.fullUrl),
    stored.map(() => 'PUT')
  );
}

function externalizeAttachments(bundle: Bundle): void {
  const binaries: BundleEntry[] = [];
  for (const entry of bundle.entry ?? []) {
    for (const attachment of attachmentsOf(entry.resource)) {
      if (!attachment.data) {
        continue;
      }
      const fullUrl = `urn:uuid:${randomUUID()}`;
      binaries.push({
        fullUrl,
        resource: { resourceType: 'Binary', contentType: attachment.contentType ?? 'application/octet-stream', data: attachment.data },
        request: { method: 'POST', url: 'Binary' },
      });
      delete attachment.data;
      attachment.url = fullUrl;
    }
  }
  bundle.entry = [...binaries, ...(bundle.entry ?? [])];
}

function attachmentsOf(resource: Resource | undefined): Attachment[] {
  switch (resource?.resourceType) {
    case 'DocumentReference':
      return (resource.content ?? []).map((content) => content.attachment);
    case 'DiagnosticReport':
      return resource.presentedForm ?? [];
    case 'Media':
      return resource.content ? [resource.content] : [];
    default:
      return [];
  }
}

function summarize(response: Bundle, fullUrls: readonly (string | undefined)[], methods: readonly (string | undefined)[]): LoadResult {
  const counts: Record<string, number> = {};
  const ids: Record<string, string[]> = {};
  const references: Record<string, string> = {};
  let total = 0;
  (response.entry ?? []).forEach((entry, index) => {
    const resource = entry.resource;
    const wrote = methods[index] === 'POST' || methods[index] === 'PUT' || methods[index] === 'PATCH';
    if (!wrote || !resource?.id || !entry.response?.status?.startsWith('2')) {
      return;
    }
    total++;
    counts[resource.resourceType] = (counts[resource.resourceType] ?? 0) + 1;
    (ids[resource.resourceType] ??= []).push(resource.id);
    const fullUrl = fullUrls[index];
    if (fullUrl) {
      references[fullUrl] = `${resource.resourceType}/${resource.id}`;
    }
  });
  return { total, counts, ids, references };
}
