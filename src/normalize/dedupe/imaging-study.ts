/**
 * ImagingStudy duplicates — rule `imagingstudy:study-uid`.
 *
 * Approach: a DICOM study is identified by its StudyInstanceUID (`identifier` with
 * system `urn:dicom:uid`, value `urn:oid:<uid>`); two sources describing the same UID
 * describe the same study, whatever their procedure codes. Two bone-age studies of the
 * same hand months apart have different UIDs and stay apart.
 * Merge: the survivor keeps every source's DICOMweb Endpoint (study `endpoint` and each
 * series' `endpoint` are unioned, series matched by UID) so the images stay retrievable
 * from either archive; series only a duplicate lists are added (counts recomputed).
 * @see https://hl7.org/fhir/R4/imagingstudy.html
 * @see https://dicom.nema.org/medical/dicom/current/output/chtml/part03/sect_C.7.2.html
 * @packageDocumentation
 */
import type { ImagingStudy } from 'fhir/r4';
import { dedupeWith } from './engine';
import { cloneJson, isObject, type JsonObject, type JsonValue } from './json';
import { DICOM_UID } from './keys';
import { unionArray } from './merge';
import type { DedupeRule } from './rule';

/** StudyInstanceUIDs of a study (without the `urn:oid:` prefix). */
export function studyUids(study: ImagingStudy): string[] {
  const out: string[] = [];
  for (const id of study.identifier ?? []) {
    if (id.system === DICOM_UID && id.value) out.push(id.value.replace(/^urn:oid:/, ''));
  }
  return out;
}

function unionSeries(survivor: JsonObject, duplicate: JsonObject): void {
  const ds = duplicate.series;
  if (!Array.isArray(ds)) return;
  const series: JsonValue[] = Array.isArray(survivor.series) ? [...survivor.series] : [];
  let added = false;
  for (const d of ds) {
    if (!isObject(d)) continue;
    const i = series.findIndex((s) => isObject(s) && s.uid === d.uid);
    const s = series[i];
    if (i < 0 || !isObject(s)) {
      series.push(cloneJson(d));
      added = true;
    } else if (Array.isArray(d.endpoint)) {
      series[i] = { ...s, endpoint: Array.isArray(s.endpoint) ? unionArray('endpoint', s.endpoint, d.endpoint) : cloneJson(d.endpoint) };
    }
  }
  survivor.series = series;
  if (added) {
    survivor.numberOfSeries = series.length;
    const counts = series.map((s) => (isObject(s) && Array.isArray(s.instance) ? s.instance.length : undefined));
    if (counts.every((c) => c !== undefined)) survivor.numberOfInstances = counts.reduce((a: number, c) => a + (c ?? 0), 0);
  }
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
