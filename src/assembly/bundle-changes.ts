/**
 * What changed in a case's record between two bundle versions, entry by entry: added, removed, and
 * changed (same fullUrl, other content). Entry fullUrls are deterministic (uuid v5 of server, type and
 * id) and an unchanged record assembles to the same bytes (`assemble.ts`), so comparing the stored
 * texts of two versions finds exactly what a specialist has not seen yet — after a re-pull, a family
 * upload, a source removed or re-pointed, or a dedupe rule switched off.
 *
 * Both texts are scanned, not parsed (`scanSearchset` finds each entry's resource bytes): only the
 * listed entries, and the entries their lines read (a report's results, a request's Medication, the
 * Patient), are parsed, to describe them with the line the section narrative uses. The
 * Composition, the Provenances and the service's own Device are the bundle's machinery (their dates,
 * targets and version change with assemblies and deployments) and are not compared.
 * @packageDocumentation
 */
import type { FhirResource } from 'fhir/r4';
import type { Queryable } from '../db/database';
import { scanSearchset } from '../fhir/searchset-scan';
import { describe, sectionOf, serviceDevice } from '../normalize/composition';
import { readBundleBytes } from './bundle-repository';

/** Resource types that every assembly writes anew (a source's Devices are records like any other). */
const MACHINERY: ReadonlySet<string> = new Set(['Composition', 'Provenance']);
/** The service's own Device (the Composition's author): its version changes with a deployment. */
const SERVICE_DEVICE = serviceDevice().fullUrl;

/** An entry added, removed or changed. */
export interface BundleChange {
  readonly fullUrl: string;
  readonly resourceType: string;
  /** The Composition section it is listed in (`results`, `problems`, …), if any. */
  readonly section?: string;
  /** Its narrative line (in the version that has it; the newer one for a change). */
  readonly description: string;
}

/** One version's side of the comparison. */
export interface ComparedVersion {
  readonly version: number;
  readonly trigger: string;
  readonly createdAt: string;
}

export interface BundleChanges {
  readonly from: ComparedVersion;
  readonly to: ComparedVersion;
  readonly totals: { readonly added: number; readonly removed: number; readonly changed: number; readonly unchanged: number };
  readonly byType: { resourceType: string; added: number; removed: number; changed: number }[];
  readonly added: BundleChange[];
  readonly removed: BundleChange[];
  readonly changed: BundleChange[];
  /** Whether a list was cut at `limit` (the totals count everything). */
  readonly truncated: boolean;
}

interface EntryBytes {
  readonly resourceType: string;
  readonly bytes: Buffer;
}

interface ScannedVersion extends ComparedVersion {
  /** Clinical entries by fullUrl, in bundle order. */
  readonly entries: Map<string, EntryBytes>;
}

/** A version's entries as the bytes of each resource, or undefined when there is no such version. */
async function scanVersion(db: Queryable, caseId: string, version: number): Promise<ScannedVersion | undefined> {
  const text = await readBundleBytes(db, caseId, version);
  if (!text) return undefined;
  const body = text.bytes;
  const scan = scanSearchset(body);
  if (!scan) throw new Error(`Bundle version ${version} of case ${caseId} is not JSON the entry scan follows`);
  const envelope = JSON.parse(scan.envelope) as { entry?: { fullUrl?: string }[] };
  const entries = new Map<string, EntryBytes>();
  (envelope.entry ?? []).forEach((e, i) => {
    const span = scan.spans.get(i);
    if (!span || !e.fullUrl || !span.resourceType || MACHINERY.has(span.resourceType) || e.fullUrl === SERVICE_DEVICE) return;
    entries.set(e.fullUrl, { resourceType: span.resourceType, bytes: body.subarray(span.start, span.end) });
  });
  return { version: text.version, trigger: text.trigger, createdAt: text.createdAt.toISOString(), entries };
}

const parse = (e: EntryBytes): FhirResource => JSON.parse(e.bytes.toString('utf8')) as FhirResource;

/**
 * Describes entries of one version, resolving its references inside that version (a request's
 * Medication, a report's results, a result's Patient for an age-specific range): each entry read is
 * parsed when first asked for, and once.
 */
function describer(v: ScannedVersion): (fullUrl: string, e: EntryBytes) => BundleChange {
  const parsed = new Map<string, FhirResource | undefined>();
  const lookup = {
    get(url: string): FhirResource | undefined {
      if (parsed.has(url)) return parsed.get(url);
      const entry = v.entries.get(url);
      const resource = entry ? parse(entry) : undefined;
      parsed.set(url, resource);
      return resource;
    },
  };
  return (fullUrl, e) => {
    const resource = lookup.get(fullUrl) ?? parse(e);
    const section = sectionOf(resource);
    return { fullUrl, resourceType: e.resourceType, ...(section ? { section } : {}), description: describe(resource, lookup) };
  };
}

const byTypeThenText = (a: BundleChange, b: BundleChange): number =>
  a.resourceType < b.resourceType ? -1 : a.resourceType > b.resourceType ? 1 : a.description < b.description ? -1 : a.description > b.description ? 1 : a.fullUrl < b.fullUrl ? -1 : 1;

/**
 * The changes from version `from` to version `to` of the case bundle.
 * @param limit entries listed per list (added, removed, changed) at most; the totals count all
 * @returns the changes, or `{missing}` naming a version that does not exist
 */
export async function bundleChanges(db: Queryable, caseId: string, from: number, to: number, limit: number): Promise<BundleChanges | { missing: number }> {
  // One after the other: the text of one version is read (as strings, then bytes) while the other is held as bytes only.
  const b = await scanVersion(db, caseId, to);
  const a = b ? await scanVersion(db, caseId, from) : undefined;
  if (!b) return { missing: to };
  if (!a) return { missing: from };
  const added: [string, EntryBytes][] = [];
  const changed: [string, EntryBytes][] = [];
  const removed: [string, EntryBytes][] = [];
  let unchanged = 0;
  const counts = new Map<string, { added: number; removed: number; changed: number }>();
  const count = (type: string, kind: 'added' | 'removed' | 'changed'): void => {
    const c = counts.get(type) ?? { added: 0, removed: 0, changed: 0 };
    c[kind] += 1;
    counts.set(type, c);
  };
  for (const [url, e] of b.entries) {
    const before = a.entries.get(url);
    if (!before) {
      added.push([url, e]);
      count(e.resourceType, 'added');
    } else if (!before.bytes.equals(e.bytes)) {
      changed.push([url, e]);
      count(e.resourceType, 'changed');
    } else unchanged += 1;
  }
  for (const [url, e] of a.entries) {
    if (!b.entries.has(url)) {
      removed.push([url, e]);
      count(e.resourceType, 'removed');
    }
  }
  const describeNew = describer(b);
  const describeOld = describer(a);
  // Sorted by type then fullUrl before the cut, so the listed ones are the same whatever the limit.
  const listed = (items: [string, EntryBytes][], d: (url: string, e: EntryBytes) => BundleChange): BundleChange[] =>
    items
      .sort(([ua, ea], [ub, eb]) => (ea.resourceType < eb.resourceType ? -1 : ea.resourceType > eb.resourceType ? 1 : ua < ub ? -1 : 1))
      .slice(0, limit)
      .map(([url, e]) => d(url, e))
      .sort(byTypeThenText);
  const { entries: _a, ...fromVersion } = a;
  const { entries: _b, ...toVersion } = b;
  return {
    from: fromVersion,
    to: toVersion,
    totals: { added: added.length, removed: removed.length, changed: changed.length, unchanged },
    byType: [...counts].sort(([x], [y]) => (x < y ? -1 : 1)).map(([resourceType, c]) => ({ resourceType, ...c })),
    added: listed(added, describeNew),
    removed: listed(removed, describeOld),
    changed: listed(changed, describeNew),
    truncated: Math.max(added.length, removed.length, changed.length) > limit,
  };
}
