/**
 * ImagingStudy duplicates — rule `imagingstudy:study-uid`.
 *
 * Approach: a DICOM study is identified by its StudyInstanceUID (`identifier` with
 * system `urn:dicom:uid`, value `urn:oid:<uid>`, as R4 says; EHRs also send it as a URI,
 * system `urn:ietf:rfc:3986` with value `urn:oid:<uid>` — Synthea does — and our own
 * DICOM uploads use the first form, so both are read); two sources describing the same
 * UID describe the same study, whatever their procedure codes. Two bone-age studies of the
 * same hand months apart have different UIDs and stay apart.
 * Merge: the survivor keeps every source's DICOMweb Endpoint (study `endpoint` and each
 * series' `endpoint` are unioned, series matched by UID) so the images stay retrievable
 * from either archive; series only a duplicate lists are added (counts recomputed). A series
 * without its uid (malformed) is joined with none: it is added unless an equal one is there.
 * @see https://hl7.org/fhir/R4/imagingstudy.html
 * @see https://dicom.nema.org/medical/dicom/current/output/chtml/part03/sect_C.7.2.html
 * @packageDocumentation
 */
import type { ImagingStudy } from 'fhir/r4';
import { dedupeWith } from './engine';
import { cloneJson, isObject, stableStringify, type JsonObject, type JsonValue } from './json';
import { DICOM_UID } from './keys';
import { unionArray } from './merge';
import type { DedupeRule } from './rule';

/** The identifier system of a value that is a URI (RFC 3986), such as `urn:oid:<uid>`. */
const URI_SYSTEM = 'urn:ietf:rfc:3986';

/**
 * StudyInstanceUIDs of a study (without the `urn:oid:` prefix): its `urn:dicom:uid` identifiers,
 * and its `urn:ietf:rfc:3986` identifiers whose value is an OID URI (`urn:oid:…`).
 * @see https://hl7.org/fhir/R4/imagingstudy-definitions.html#ImagingStudy.identifier
 */
export function studyUids(study: ImagingStudy): string[] {
  const out: string[] = [];
  for (const id of study.identifier ?? []) {
    if (!id.value) continue;
    const oid = id.value.startsWith('urn:oid:');
    if (id.system === DICOM_UID || (id.system === URI_SYSTEM && oid)) {
      const uid = oid ? id.value.slice('urn:oid:'.length) : id.value;
      if (uid !== '' && !out.includes(uid)) out.push(uid);
    }
  }
  return out;
}

/** Elements of `a` then those of `b` not in `a` by `key` (copies of `b`'s). */
function unionByKey(a: readonly JsonValue[], b: readonly JsonValue[], key: (v: JsonObject) => unknown): JsonValue[] {
  const out = [...a];
  const seen = new Set(a.filter(isObject).map(key).filter((k) => k !== undefined));
  for (const v of b) {
    if (!isObject(v)) continue;
    const k = key(v);
    if (k !== undefined && seen.has(k)) continue;
    if (k !== undefined) seen.add(k);
    out.push(cloneJson(v));
  }
  return out;
}

const count = (value: JsonValue | undefined): number => (typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : 0);

/**
 * The duplicate's series joined into the survivor's: a series of its own is added; a shared one
 * (same UID) gets the instances it lacks (by SOP Instance UID: the family's uploaded images stay
 * reachable when the EHR's study lists none) and every source's endpoints. Counts are the larger of
 * what either side declared and what is listed (https://hl7.org/fhir/R4/imagingstudy.html: a count
 * may exceed the instances listed, never fall short of them).
 */
function unionSeries(survivor: JsonObject, duplicate: JsonObject): void {
  const ds = duplicate.series;
  if (!Array.isArray(ds)) return;
  const series: JsonValue[] = Array.isArray(survivor.series) ? [...survivor.series] : [];
  for (const d of ds) {
    if (!isObject(d)) continue;
    if (typeof d.uid !== 'string') {
      // Without the uid R4 requires (1..1), a series is the same as another only when equal in full.
      const text = stableStringify(d);
      if (!series.some((s) => stableStringify(s) === text)) series.push(cloneJson(d));
      continue;
    }
    const i = series.findIndex((s) => isObject(s) && s.uid === d.uid);
    const s = series[i];
    if (i < 0 || !isObject(s)) {
      series.push(cloneJson(d));
      continue;
    }
    const joined: JsonObject = { ...s };
    if (Array.isArray(d.endpoint)) joined.endpoint = Array.isArray(s.endpoint) ? unionArray('endpoint', s.endpoint, d.endpoint) : cloneJson(d.endpoint);
    if (Array.isArray(d.instance)) {
      const instances = unionByKey(Array.isArray(s.instance) ? s.instance : [], d.instance, (x) => (typeof x.uid === 'string' ? x.uid : undefined));
      if (instances.length > 0) joined.instance = instances;
    }
    const listed = Array.isArray(joined.instance) ? joined.instance.length : 0;
    const most = Math.max(count(s.numberOfInstances), count(d.numberOfInstances), listed);
    if (most > 0) joined.numberOfInstances = most;
    series[i] = joined;
  }
  survivor.series = series;
  survivor.numberOfSeries = Math.max(count(survivor.numberOfSeries), count(duplicate.numberOfSeries), series.length);
  const perSeries = series.reduce<number>((n, x) => n + (isObject(x) ? Math.max(count(x.numberOfInstances), Array.isArray(x.instance) ? x.instance.length : 0) : 0), 0);
  const instances = Math.max(count(survivor.numberOfInstances), count(duplicate.numberOfInstances), perSeries);
  if (instances > 0) survivor.numberOfInstances = instances;
}

/** The rule. */
export const imagingStudyRule: DedupeRule = {
  name: 'imagingstudy:study-uid',
  resourceType: 'ImagingStudy',
  approach: 'same DICOM StudyInstanceUID; endpoints of every source kept',
  blocking(resources) {
    const keys = resources.map((r) => {
      const s = r.resource as ImagingStudy;
      return s.status === 'entered-in-error' ? [] : studyUids(s);
    });
    return { keys: (i) => keys[i] ?? [] };
  },
  unionExtra: unionSeries,
};

/** De-duplicates ImagingStudies only. */
export const dedupeImagingStudies = dedupeWith(imagingStudyRule);
