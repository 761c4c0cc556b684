import { createHash } from 'node:crypto';
import type { BundleEntry } from 'fhir/r4';
import { MalformedResponseError, type ScannedSearchPage } from '../fhir';
import { TYPES_WITH_ATTACHMENTS } from './attachments';
import { serverIssuesOf, type ServerIssue } from './server-messages';
import { isRecord } from '../util/is-record';

/**
 * The resources of a searchset page, as the raw store keeps them: each `entry.resource` that is
 * an object, except the server's informational OperationOutcome (`search.mode = outcome`,
 * https://hl7.org/fhir/R4/bundle-definitions.html#Bundle.entry.search.mode), whose issues are
 * returned beside them (`server-messages.ts`).
 *
 * Each resource is kept as the exact bytes the server sent: the page is scanned, not parsed
 * (fhir/searchset-scan.ts), each resource's bytes are hashed as they are, and PostgreSQL cuts the
 * same bytes out of the page it stores anyway and keeps them as json (validated). Nothing is serialized
 * again, and only resources that can carry attachments (attachments.ts) are parsed here. Where the page could not be
 * scanned (not UTF-8, or JSON the scan does not follow) it was parsed whole, and its resources are
 * serialized with `JSON.stringify` into a buffer of their own.
 */

/** One resource of a page. */
export interface PageEntry {
  /** Position in `Bundle.entry` (0-based); -1 for a resource read after the page for its `_include` (included-follow-up.ts). */
  readonly index: number;
  /** `resourceType` when it is a string, else ''. */
  readonly type: string;
  /** The resource's `id`, or `sha256:<hash>` for a resource without one (non-conformant in a searchset). */
  readonly id: string;
  /** `meta.versionId` when it is a string, else ''. */
  readonly versionId: string;
  /** SHA-256 (hex) of the resource's bytes as stored. */
  readonly sha256: string;
  /** Byte offset and length of the resource's JSON in {@link PageEntries.source} (or the page body). */
  readonly offset: number;
  readonly length: number;
  /** The parsed resource, for the types that can carry attachments (and every resource of an unscanned page). */
  readonly resource?: Record<string, unknown>;
  /** Whom the record is about: the `reference` of its top-level `subject` / `patient` (scanned pages). */
  readonly subjectReferences?: readonly string[];
  /** Its entry's `search.mode` (`match`, `include`) when the server sent one (included-resources.ts). */
  readonly searchMode?: string;
}

/** What the raw store keeps of a page. */
export interface PageEntries {
  readonly entries: readonly PageEntry[];
  /** The bytes the entries' offsets point into, when not the page body itself (an unscanned page). */
  readonly source: Buffer | null;
  /** What the server said about the search in the page (its `search.mode = outcome` OperationOutcomes). */
  readonly serverIssues: readonly ServerIssue[];
}

/** SHA-256 of a raw resource's bytes, hex (its `raw_resources.sha256`). */
export const sha256Hex = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

const isServerOutcome = (entry: BundleEntry, type: string): boolean => type === 'OperationOutcome' && isRecord(entry.search) && entry.search.mode === 'outcome';

/** An entry's `search.mode` when it is a string (https://hl7.org/fhir/R4/bundle-definitions.html#Bundle.entry.search.mode). */
function searchModeOf(entry: unknown): { searchMode?: string } {
  const mode = isRecord(entry) && isRecord(entry.search) ? entry.search.mode : undefined;
  return typeof mode === 'string' ? { searchMode: mode } : {};
}

function parseSpan(raw: Buffer, start: number, end: number, index: number): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(raw.toString('utf8', start, end));
    if (isRecord(value)) return value;
  } catch (err) {
    throw new MalformedResponseError(`entry ${index}: resource is not valid JSON`, true, { cause: err });
  }
  throw new MalformedResponseError(`entry ${index}: resource is not an object`, true);
}

/**
 * A server's outcome entry's issues; a malformed one is reported as such (it is still only a hint,
 * never a reason to refuse the page).
 */
function outcomeIssues(read: () => Record<string, unknown>): ServerIssue[] {
  try {
    return serverIssuesOf(read());
  } catch {
    return [{ severity: 'unknown', code: 'unknown', text: 'the server sent an OperationOutcome that is not valid JSON' }];
  }
}

/** A scanned page's resources: keys from the scan, bytes hashed in place. */
function scannedEntries(page: ScannedSearchPage, list: readonly unknown[]): { entries: PageEntry[]; serverIssues: ServerIssue[] } {
  const entries: PageEntry[] = [];
  const serverIssues: ServerIssue[] = [];
  for (let index = 0; index < list.length; index++) {
    const span = page.spans.get(index);
    if (!span) continue;
    const type = span.resourceType ?? '';
    if (isServerOutcome(list[index] as BundleEntry, type)) {
      serverIssues.push(...outcomeIssues(() => parseSpan(page.raw, span.start, span.end, index)));
      continue;
    }
    const sha256 = sha256Hex(page.raw.subarray(span.start, span.end));
    entries.push({
      index,
      type,
      id: span.id ?? `sha256:${sha256}`,
      versionId: span.versionId ?? '',
      sha256,
      offset: span.start,
      length: span.end - span.start,
      ...(TYPES_WITH_ATTACHMENTS.has(type) ? { resource: parseSpan(page.raw, span.start, span.end, index) } : {}),
      ...(span.subjectReferences ? { subjectReferences: span.subjectReferences } : {}),
      ...searchModeOf(list[index]),
    });
  }
  return { entries, serverIssues };
}

/** A page parsed whole: its resources serialized into a buffer of their own. */
function parsedEntries(list: readonly unknown[]): PageEntries {
  const entries: PageEntry[] = [];
  const serverIssues: ServerIssue[] = [];
  const parts: Buffer[] = [];
  let offset = 0;
  for (let index = 0; index < list.length; index++) {
    const entry = list[index];
    if (!isRecord(entry) || !isRecord(entry.resource)) continue;
    const resource = entry.resource;
    const type = typeof resource.resourceType === 'string' ? resource.resourceType : '';
    if (isServerOutcome(entry as BundleEntry, type)) {
      serverIssues.push(...serverIssuesOf(resource));
      continue;
    }
    const bytes = Buffer.from(JSON.stringify(resource), 'utf8');
    const sha256 = sha256Hex(bytes);
    const version = isRecord(resource.meta) ? resource.meta.versionId : undefined;
    entries.push({
      index,
      type,
      id: typeof resource.id === 'string' ? resource.id : `sha256:${sha256}`,
      versionId: typeof version === 'string' ? version : '',
      sha256,
      offset,
      length: bytes.length,
      resource,
      ...searchModeOf(entry),
    });
    parts.push(bytes);
    offset += bytes.length;
  }
  return { entries, source: Buffer.concat(parts), serverIssues };
}

/** The resources of a page, located in its bytes (see the module comment). */
export function pageEntries(page: ScannedSearchPage): PageEntries {
  const raw: unknown = page.envelope.entry;
  const list = Array.isArray(raw) ? (raw as unknown[]) : [];
  if (page.spans.size > 0) return { ...scannedEntries(page, list), source: null };
  return parsedEntries(list);
}

/**
 * The rows of a page for `jsonb_to_recordset(…) AS m(t text, i text, v text, h text, o integer, n integer)`:
 * type, id, version, hash, and the offset and length of each resource's bytes.
 */
export function pageRowsJson(entries: readonly PageEntry[]): string {
  return JSON.stringify(entries.map((e) => ({ t: e.type, i: e.id, v: e.versionId, h: e.sha256, o: e.offset, n: e.length })));
}
