/**
 * The case bundle: one FHIR `document` Bundle — the summary Composition first, then every
 * resource of the case in a deterministic order, then the Provenance.
 *
 * Document rules honoured (R4 bundle.html / documents.html): `identifier` with system and
 * value (bdl-9), `timestamp` (bdl-10), a Composition as the first entry (bdl-11), unique
 * `fullUrl`s (bdl-7), and every `urn:uuid:` reference resolving to an entry (checked by
 * {@link unresolvedReferences}). Two assemblies of the same input with another bundleId
 * and timestamp differ in those values only.
 * @see https://hl7.org/fhir/R4/bundle.html
 * @see https://hl7.org/fhir/R4/documents.html
 * @see https://hl7.org/fhir/R4/bundle.html#references
 * @packageDocumentation
 */
import type { Bundle, BundleEntry, Composition, FhirResource, Provenance } from 'fhir/r4';
import type { AssemblyOptions } from './types';

/** A resource with its Bundle fullUrl (NormalizedResource fits). */
export interface BundleEntryInput<T extends FhirResource = FhirResource> {
  readonly fullUrl: string;
  readonly resource: T;
}

/** A Composition with the resources it brings into the bundle (its author Device). */
export interface AssembledComposition {
  readonly entry: BundleEntryInput<Composition>;
  readonly supporting: readonly BundleEntryInput[];
}

/** Input of {@link buildDocumentBundle}. */
export interface DocumentBundleInput {
  readonly composition: AssembledComposition;
  /** The case's resources (after de-duplication), the case Patient among them. */
  readonly resources: readonly BundleEntryInput[];
  readonly provenances: readonly BundleEntryInput<Provenance>[];
  readonly options: AssemblyOptions;
}

/** System of `Bundle.identifier` (value: `AssemblyOptions.bundleId`). */
export const BUNDLE_IDENTIFIER_SYSTEM = 'https://second-opinion.example.org/fhir/sid/case-bundle';

/** Entry order by type: the clinical story first, supporting resources after, Provenance last. */
const TYPE_ORDER: readonly string[] = [
  'Patient', 'RelatedPerson', 'Condition', 'AllergyIntolerance', 'MedicationRequest', 'MedicationStatement', 'Medication',
  'Immunization', 'Observation', 'DiagnosticReport', 'ImagingStudy', 'Procedure', 'Encounter', 'DocumentReference', 'Binary',
  'Media', 'Specimen', 'Practitioner', 'PractitionerRole', 'Organization', 'Location', 'Endpoint', 'Device',
];
const RANK = new Map(TYPE_ORDER.map((t, i) => [t, i]));
const LAST = TYPE_ORDER.length;

/** An entry with its sort keys, computed once (a sort compares each entry ~log2(n) times). */
interface Ranked {
  readonly entry: BundleEntryInput;
  readonly rank: number;
  readonly type: string;
}

function ranked(entry: BundleEntryInput): Ranked {
  const type = entry.resource.resourceType;
  return { entry, rank: type === 'Provenance' ? LAST + 1 : (RANK.get(type) ?? LAST), type };
}

function entryOrder(a: Ranked, b: Ranked): number {
  if (a.rank !== b.rank) return a.rank - b.rank;
  if (a.type !== b.type) return a.type < b.type ? -1 : 1;
  const ua = a.entry.fullUrl;
  const ub = b.entry.fullUrl;
  return ua < ub ? -1 : ua > ub ? 1 : 0;
}

/**
 * The document Bundle: Composition, its subject, then every other resource ordered by
 * type ({@link TYPE_ORDER}) and fullUrl, Provenance last. Input order does not matter.
 * Throws if two entries share a fullUrl with different content.
 */
export function buildDocumentBundle(input: DocumentBundleInput): Bundle {
  const { composition, options } = input;
  const subject = composition.entry.resource.subject?.reference;
  const byUrl = new Map<string, BundleEntryInput>();
  for (const e of [...input.resources, ...composition.supporting, ...input.provenances]) {
    const seen = byUrl.get(e.fullUrl);
    if (seen && seen.resource !== e.resource && JSON.stringify(seen.resource) !== JSON.stringify(e.resource)) {
      throw new Error(`Two different resources share fullUrl ${e.fullUrl}`);
    }
    byUrl.set(e.fullUrl, e);
  }
  if (byUrl.has(composition.entry.fullUrl)) throw new Error(`The Composition's fullUrl ${composition.entry.fullUrl} is used by another entry`);
  const rest = [...byUrl.values()].filter((e) => e.fullUrl !== subject).map(ranked).sort(entryOrder).map((r) => r.entry);
  const subjectEntry = subject !== undefined ? byUrl.get(subject) : undefined;
  const ordered = [composition.entry, ...(subjectEntry ? [subjectEntry] : []), ...rest];
  const entry: BundleEntry[] = ordered.map((e) => ({ fullUrl: e.fullUrl, resource: e.resource }));
  return {
    resourceType: 'Bundle',
    identifier: { system: BUNDLE_IDENTIFIER_SYSTEM, value: options.bundleId },
    type: 'document',
    timestamp: options.timestamp,
    entry,
  };
}

/** A reference inside a bundle that does not resolve to an entry. */
export interface UnresolvedReference {
  /** fullUrl of the entry holding the reference. */
  readonly entry: string;
  /** JSON path inside the resource, e.g. `result[2].reference`. */
  readonly path: string;
  readonly reference: string;
}

const ABSOLUTE_EXTERNAL = /^https?:\/\//i;

type Visit = (key: string, value: string, path: readonly (string | number)[], holder: Record<string, unknown>) => void;

/** Visits every string of a JSON tree with its path (segments; joined only when reported). */
function walk(value: unknown, path: (string | number)[], visit: Visit): void {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      path.push(i);
      walk(value[i], path, visit);
      path.pop();
    }
    return;
  }
  if (typeof value !== 'object' || value === null) return;
  const obj = value as Record<string, unknown>;
  for (const k in obj) {
    const v = obj[k];
    if (typeof v === 'string') {
      if (k === 'reference' || k === 'url') visit(k, v, path, obj);
    } else if (typeof v === 'object' && v !== null) {
      path.push(k);
      walk(v, path, visit);
      path.pop();
    }
  }
}

const pathText = (path: readonly (string | number)[], key: string): string =>
  [...path, key].reduce<string>((acc, seg) => (typeof seg === 'number' ? `${acc}[${seg}]` : acc === '' ? seg : `${acc}.${seg}`), '');

/**
 * Every reference in the bundle that does not resolve inside it: `Reference.reference`
 * values that are `urn:uuid:`/`urn:oid:` or relative (`Type/id`) and match no entry
 * fullUrl, `#id` references to a missing contained resource, and `Attachment.url`s in
 * `urn:uuid:` form that match no entry. Absolute http(s) references are external by
 * design (R4 allows them in documents) and are not reported. Empty = the bundle is closed.
 */
export function unresolvedReferences(bundle: Bundle): UnresolvedReference[] {
  const fullUrls = new Set((bundle.entry ?? []).map((e) => e.fullUrl).filter((u): u is string => u !== undefined));
  const out: UnresolvedReference[] = [];
  for (const e of bundle.entry ?? []) {
    const resource = e.resource;
    if (!resource) continue;
    const entryUrl = e.fullUrl ?? '';
    const containedIds = new Set(
      ('contained' in resource && Array.isArray(resource.contained) ? resource.contained : [])
        .map((c: FhirResource | null) => (typeof c === 'object' && c !== null ? c.id : undefined))
        .filter((id): id is string => typeof id === 'string'),
    );
    walk(resource, [], (key, value, path, holder) => {
      const isReference = key === 'reference';
      const isAttachmentUrl = key === 'url' && 'contentType' in holder && value.startsWith('urn:uuid:');
      if (!isReference && !isAttachmentUrl) return;
      if (value.startsWith('#')) {
        if (value !== '#' && !containedIds.has(value.slice(1))) out.push({ entry: entryUrl, path: pathText(path, key), reference: value });
        return;
      }
      if (fullUrls.has(value) || ABSOLUTE_EXTERNAL.test(value)) return;
      out.push({ entry: entryUrl, path: pathText(path, key), reference: value });
    });
  }
  return out;
}
