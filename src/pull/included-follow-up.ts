/**
 * What a query's `_include` should have brought and its page does not hold (`missingIncludes`,
 * included-resources.ts), read from the source before the page is committed and stored with it: a
 * server may ignore `_include` (https://hl7.org/fhir/R4/search.html#errors), and an ImagingStudy
 * whose Endpoint is not in the raw store no longer says where its images are in the case bundle.
 *
 * Only what is neither in the page nor already in the raw store for the source is asked for, at most
 * {@link MAX_INCLUDE_READS_PER_PAGE} per page: by one `_id` search per type
 * (https://hl7.org/fhir/R4/search.html#id) where the server's CapabilityStatement lists `_id` for the
 * type, else, and for whatever that search did not return, by reads
 * (https://hl7.org/fhir/R4/http.html#read). What comes back joins the page's entries as included
 * (`search.mode = include`), its bytes as received, so the page's one guarded commit (`commitPage`)
 * stores it with the page, keyed like any raw row, and counts it once per query like an included
 * resource the server sent: a page committed twice stores nothing twice, and a run that dies before
 * the commit fetches the page, and reads these, again. A target the server says is not there (404,
 * 410) or not ours to read (403) is a warning among the query's server messages, not a failure.
 * @packageDocumentation
 */
import type { FhirResource } from 'fhir/r4';
import type { Queryable } from '../db/database';
import type { EndpointCapabilities } from '../endpoints/capabilities';
import { FhirHttpError, isGoneError, scanSearchPage, type FhirEndpointClient } from '../fhir';
import { missingIncludes, type IncludeTarget } from './included-resources';
import { pageEntries, sha256Hex, type PageEntries, type PageEntry } from './page-resources';
import type { ServerIssue } from './server-messages';

/** Most resources read after one page (the rest is said among the query's server messages). */
export const MAX_INCLUDE_READS_PER_PAGE = 50;

/** Where and how the missing resources are read. */
export interface IncludeFollowUp {
  readonly db: Queryable;
  readonly client: FhirEndpointClient;
  readonly capabilities: EndpointCapabilities | null;
  readonly caseId: string;
  readonly sourceId: string;
  readonly baseUrl: string;
  /** `Type/id` of the targets this run of the query could not read: not asked for again on its later pages. */
  readonly unreadable: Set<string>;
  /** Sends one request (the task counts its retries). */
  readonly send: <T>(request: () => Promise<T>) => Promise<T>;
}

/** A resource read after the page, as received. */
interface ReadResource {
  readonly type: string;
  readonly id: string;
  readonly versionId: string;
  readonly sha256: string;
  readonly bytes: Buffer;
}

const keyOf = (t: { readonly type: string; readonly id: string }): string => `${t.type}/${t.id}`;

/** Statuses of an `_id` search the server does not take: the targets are read one by one instead. */
const ID_SEARCH_REFUSALS = new Set([400, 403, 405, 422, 501]);

/**
 * The page's entries with what its query's `_include` should have brought and the page lacks (see
 * the module comment); `entries` itself when nothing is missing (no request, no query of the raw
 * store: an `_include` the server honoured costs nothing).
 * @param body the page's bytes (where the entries' offsets point unless `entries.source` is set)
 */
export async function withMissingIncludes(at: IncludeFollowUp, include: string | undefined, entries: PageEntries, body: Buffer): Promise<PageEntries> {
  const missing = missingIncludes(include, entries, body, at.baseUrl).filter((t) => !at.unreadable.has(keyOf(t)));
  if (missing.length === 0) return entries;
  const toRead = await notStored(at, missing);
  if (toRead.length === 0) return entries;
  const reading = toRead.slice(0, MAX_INCLUDE_READS_PER_PAGE);
  const issues: ServerIssue[] = [];
  if (toRead.length > reading.length) {
    issues.push({
      severity: 'warning',
      code: 'too-costly',
      // One text whatever the number left out, so that the query keeps one message counting the pages.
      text: `resources the results reference (_include=${reading[0]?.include ?? ''}) were not read: at most ${MAX_INCLUDE_READS_PER_PAGE} are read per page`,
    });
  }
  const found = await searchById(at, reading);
  const read: ReadResource[] = [];
  for (const target of reading) {
    const resource = found.get(keyOf(target)) ?? (await readOne(at, target, issues));
    if (resource) read.push(resource);
  }
  return withEntries(entries, body, read, issues);
}

/** The targets the raw store does not hold for the source yet (in any version, from any pull). */
async function notStored(at: IncludeFollowUp, targets: readonly IncludeTarget[]): Promise<IncludeTarget[]> {
  const { rows } = await at.db.query<{ resource_type: string; remote_id: string }>(
    `SELECT DISTINCT resource_type, remote_id FROM raw_resources
      WHERE case_id = $1 AND source_id = $2 AND resource_type = ANY($3::text[]) AND remote_id = ANY($4::text[])`,
    [at.caseId, at.sourceId, [...new Set(targets.map((t) => t.type))], targets.map((t) => t.id)],
  );
  const stored = new Set(rows.map((r) => `${r.resource_type}/${r.remote_id}`));
  return targets.filter((t) => !stored.has(keyOf(t)));
}

/**
 * The targets one `_id` search per type returned (only those asked for: a server ignoring `_id` sends
 * others), where the server lists `_id` among the type's search parameters and more than one is
 * wanted; empty where it does not, or refuses the search.
 */
async function searchById(at: IncludeFollowUp, targets: readonly IncludeTarget[]): Promise<Map<string, ReadResource>> {
  const found = new Map<string, ReadResource>();
  for (const type of new Set(targets.map((t) => t.type))) {
    const ids = targets.filter((t) => t.type === type).map((t) => t.id);
    if (ids.length < 2 || at.capabilities?.resources[type]?.searchParams.includes('_id') !== true) continue;
    const page = await at.send(() => at.client.search(type, { _id: ids.join(','), _count: String(ids.length) }, scanSearchPage)).catch((err: unknown) => {
      if (err instanceof FhirHttpError && err.permanent && ID_SEARCH_REFUSALS.has(err.status)) return undefined;
      throw err;
    });
    if (page === undefined) continue;
    const entries = pageEntries(page);
    const wanted = new Set(ids);
    for (const e of entries.entries) {
      if (e.type !== type || !wanted.has(e.id)) continue;
      const bytes = (entries.source ?? page.raw).subarray(e.offset, e.offset + e.length);
      found.set(keyOf(e), { type, id: e.id, versionId: e.versionId, sha256: e.sha256, bytes });
    }
  }
  return found;
}

/** One target read; undefined, with a warning in `issues`, when the server says it is gone (404, 410) or refuses it (403). */
async function readOne(at: IncludeFollowUp, target: IncludeTarget, issues: ServerIssue[]): Promise<ReadResource | undefined> {
  try {
    const { resource, bytes } = await at.send(() => at.client.readAsReceived(target.type as FhirResource['resourceType'], target.id));
    const versionId = resource.meta?.versionId;
    return {
      type: target.type,
      id: resource.id ?? target.id,
      versionId: typeof versionId === 'string' ? versionId : '',
      sha256: sha256Hex(bytes),
      bytes,
    };
  } catch (err) {
    const gone = isGoneError(err);
    if (!gone && !(err instanceof FhirHttpError && err.status === 403)) throw err;
    at.unreadable.add(keyOf(target));
    const status = (err as FhirHttpError).status;
    issues.push({
      severity: 'warning',
      code: gone ? 'not-found' : 'forbidden',
      text: `${keyOf(target)}, which the results reference (_include=${target.include}), could not be read: HTTP ${status}`,
    });
    return undefined;
  }
}

/** `entries` with the resources read appended (their bytes after the page's), as included, and `issues` among the page's. */
function withEntries(entries: PageEntries, body: Buffer, read: readonly ReadResource[], issues: readonly ServerIssue[]): PageEntries {
  const serverIssues = [...entries.serverIssues, ...issues];
  if (read.length === 0) return { ...entries, serverIssues };
  const before = entries.source ?? body;
  let offset = before.length;
  const added = read.map((r): PageEntry => {
    const entry: PageEntry = { index: -1, type: r.type, id: r.id, versionId: r.versionId, sha256: r.sha256, offset, length: r.bytes.length, searchMode: 'include' };
    offset += r.bytes.length;
    return entry;
  });
  return { entries: [...entries.entries, ...added], source: Buffer.concat([before, ...read.map((r) => r.bytes)]), serverIssues };
}
