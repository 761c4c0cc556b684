/**
 * Origin marks on every imported resource: `meta.source` and an origin `meta.tag`.
 *
 * Decisions:
 * - `meta.source` = the source's FHIR base URL (no trailing slash; for family uploads the `urn:` of
 *   the upload channel). R4 defines it as "a uri that identifies the source system of the
 *   resource": the base URL is that system, is meaningful to any reader of the bundle (the
 *   specialist, the referring EHR), and stays the same across pulls. The internal source id would
 *   mean nothing outside this service; pull ids live in the Provenance of each source. A `meta.source`
 *   the source itself had set is replaced (the raw store keeps it).
 * - `meta.tag` gets `https://second-opinion.example.org/fhir/CodeSystem/origin` `local-ehr` |
 *   `family-upload` | `specialist`; the source's own tags are kept (a tag in our origin system sent
 *   by a source is dropped: a source cannot claim an origin).
 * - `meta.versionId` of the source is dropped: it numbers versions on the source's server and is
 *   not a version of the bundle's resource (the raw store, `LeftOut` and `versions.ts` keep it).
 * - `meta.lastUpdated` is kept: when the source last changed the record is clinically useful
 *   ("updated after the last visit") and is what version selection used.
 * - `meta.profile` and `meta.security` are kept.
 * @see https://hl7.org/fhir/R4/resource.html#Meta
 * @see https://hl7.org/fhir/R4/resource-definitions.html#Meta.source
 * @see https://hl7.org/fhir/R4/security-labels.html (tags vs security labels)
 * @packageDocumentation
 */
import type { Coding } from 'fhir/r4';
import { normalizeBaseUrl } from './ids';
import type { Origin, SourceInfo } from './types';

/* Builtins bound once: hot loops then read module constants, not globals (much cheaper inside vm contexts such as jest's). */
const { isArray } = Array;

/** Code system of the origin tag. */
export const ORIGIN_SYSTEM = 'https://second-opinion.example.org/fhir/CodeSystem/origin';

/** Displays of the origin codes. */
export const ORIGIN_DISPLAY: Readonly<Record<Origin, string>> = {
  'local-ehr': 'Local care team EHR',
  'family-upload': 'Uploaded by the family',
  specialist: 'Second-opinion program',
};

/** The origin `meta.tag` coding. */
export function originTag(origin: Origin): Coding {
  return { system: ORIGIN_SYSTEM, code: origin, display: ORIGIN_DISPLAY[origin] };
}

/** The `meta.source` of resources from `source`: its base URL without trailing slashes. */
export function metaSourceOf(source: Pick<SourceInfo, 'baseUrl'>): string {
  return normalizeBaseUrl(source.baseUrl);
}

/**
 * Sets `meta.source` and the origin tag on a (copied) resource, in place; drops `meta.versionId`.
 * @param metaSource - `meta.source` to set (see {@link metaSourceOf})
 */
export function applyOrigin(resource: Record<string, unknown>, metaSource: string, origin: Origin): void {
  const old = resource['meta'];
  const meta: Record<string, unknown> = {};
  let sourceTags: unknown[] | undefined;
  if (typeof old === 'object' && old !== null && !isArray(old)) {
    const from = old as Record<string, unknown>;
    for (const key in from) {
      if (key === 'versionId' || key === '_versionId' || key === 'source' || key === '_source') continue;
      if (key === 'tag') {
        if (isArray(from[key])) sourceTags = from[key] as unknown[];
      } else meta[key] = from[key];
    }
  }
  meta['source'] = metaSource;
  const tag: unknown[] = [];
  if (sourceTags) {
    for (const t of sourceTags) if (!(typeof t === 'object' && t !== null && (t as Coding).system === ORIGIN_SYSTEM)) tag.push(t);
  }
  tag.push(originTag(origin));
  meta['tag'] = tag;
  resource['meta'] = meta;
}
