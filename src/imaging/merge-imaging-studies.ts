/**
 * Merging uploaded ImagingStudy resources into those pulled from a care team's EHR, by Study Instance
 * UID. Pure: inputs are not modified.
 *
 * Approach: the pulled study is the base — its id, subject, `endpoint` (the DICOMweb Endpoint from which
 * the images can be retrieved), `basedOn`, `referrer` and everything else are kept. From the uploaded study
 * it gains the series and instances it lacks (union by Series UID, then SOP Instance UID), elements it
 * lacks (description, started, accession identifier, modalities, body site), and the `family-upload` tag.
 * Counts become the larger of the declared count and the listed union (a pulled study often declares
 * instances it does not list). Several pulled studies with one UID (two care teams) fold into the first,
 * endpoints unioned. Every fold is recorded in `merges`, and `replacements` maps each merged-away id to
 * the kept id so references can be rewritten.
 *
 * @see https://hl7.org/fhir/R4/imagingstudy.html
 * @packageDocumentation
 */
import type { Coding, Identifier, ImagingStudy, ImagingStudySeries, ImagingStudySeriesInstance, Reference } from 'fhir/r4';
import { DICOM_UID_SYSTEM } from './imaging-study';

/** One fold of a study into another. */
export interface ImagingStudyMerge {
  readonly studyInstanceUid: string;
  readonly keptId: string | undefined;
  readonly mergedId: string | undefined;
  readonly from: 'pulled' | 'uploaded';
  readonly addedSeries: number;
  readonly addedInstances: number;
}

export interface ImagingStudyMergeResult {
  /** Pulled studies (merged) in input order, then uploaded studies that matched none. */
  readonly studies: ImagingStudy[];
  readonly merges: ImagingStudyMerge[];
  /** Merged-away id → kept id. */
  readonly replacements: ReadonlyMap<string, string>;
}

/** The Study Instance UID of an ImagingStudy (identifier `urn:dicom:uid`, `urn:oid:` prefix removed). */
export function studyInstanceUidOf(study: ImagingStudy): string | undefined {
  const id = study.identifier?.find((i) => i.system === DICOM_UID_SYSTEM && i.value) ?? study.identifier?.find((i) => i.value?.startsWith('urn:oid:'));
  return id?.value?.replace(/^urn:oid:/, '');
}

/** Merges `uploaded` into `pulled` by Study Instance UID. */
export function mergeImagingStudies(pulled: readonly ImagingStudy[], uploaded: readonly ImagingStudy[]): ImagingStudyMergeResult {
  const merges: ImagingStudyMerge[] = [];
  const replacements = new Map<string, string>();
  const out: ImagingStudy[] = [];
  const byUid = new Map<string, number>();
  const fold = (target: number, incoming: ImagingStudy, from: 'pulled' | 'uploaded', uid: string): void => {
    const base = out[target];
    if (!base) return;
    const { study, addedSeries, addedInstances } = mergeTwo(base, incoming);
    out[target] = study;
    merges.push({ studyInstanceUid: uid, keptId: base.id, mergedId: incoming.id, from, addedSeries, addedInstances });
    if (incoming.id && base.id && incoming.id !== base.id) replacements.set(incoming.id, base.id);
  };
  for (const study of pulled) {
    const uid = studyInstanceUidOf(study);
    const at = uid === undefined ? undefined : byUid.get(uid);
    if (uid !== undefined && at !== undefined) fold(at, study, 'pulled', uid);
    else {
      if (uid !== undefined) byUid.set(uid, out.length);
      out.push(structuredClone(study));
    }
  }
  for (const study of uploaded) {
    const uid = studyInstanceUidOf(study);
    const at = uid === undefined ? undefined : byUid.get(uid);
    if (uid !== undefined && at !== undefined) fold(at, study, 'uploaded', uid);
    else {
      if (uid !== undefined) byUid.set(uid, out.length);
      out.push(structuredClone(study));
    }
  }
  return { studies: out, merges, replacements };
}

function mergeTwo(base: ImagingStudy, incoming: ImagingStudy): { study: ImagingStudy; addedSeries: number; addedInstances: number } {
  const study = structuredClone(base);
  let addedSeries = 0;
  let addedInstances = 0;
  const series = study.series ?? [];
  for (const s of incoming.series ?? []) {
    const existing = series.find((x) => x.uid === s.uid);
    if (!existing) {
      series.push(structuredClone(s));
      addedSeries += 1;
      addedInstances += s.instance?.length ?? 0;
      continue;
    }
    addedInstances += mergeSeries(existing, s);
  }
  if (series.length > 0) study.series = series;
  study.endpoint = unionBy(study.endpoint, incoming.endpoint, (r: Reference) => r.reference ?? JSON.stringify(r));
  if (study.endpoint.length === 0) delete study.endpoint;
  study.identifier = unionBy(study.identifier, incoming.identifier, identifierKey);
  study.modality = unionBy(study.modality, incoming.modality, codingKey);
  if (study.modality.length === 0) delete study.modality;
  study.meta = { ...study.meta, tag: unionBy(study.meta?.tag, incoming.meta?.tag, codingKey) };
  if (!study.description && incoming.description) study.description = incoming.description;
  if (!study.started && incoming.started) study.started = incoming.started;
  const listedSeries = series.length;
  const listedInstances = series.reduce((n, s) => n + (s.numberOfInstances ?? s.instance?.length ?? 0), 0);
  study.numberOfSeries = Math.max(study.numberOfSeries ?? 0, listedSeries);
  study.numberOfInstances = Math.max(study.numberOfInstances ?? 0, listedInstances);
  return { study, addedSeries, addedInstances };
}

/** Adds the incoming series' missing instances and elements into `target`; returns instances added. */
function mergeSeries(target: ImagingStudySeries, incoming: ImagingStudySeries): number {
  const instances: ImagingStudySeriesInstance[] = target.instance ?? [];
  let added = 0;
  for (const instance of incoming.instance ?? []) {
    if (!instances.some((i) => i.uid === instance.uid)) {
      instances.push(structuredClone(instance));
      added += 1;
    }
  }
  if (instances.length > 0) target.instance = instances;
  target.numberOfInstances = Math.max(target.numberOfInstances ?? 0, instances.length);
  if (target.number === undefined && incoming.number !== undefined) target.number = incoming.number;
  if (!target.description && incoming.description) target.description = incoming.description;
  if (!target.bodySite && incoming.bodySite) target.bodySite = structuredClone(incoming.bodySite);
  const endpoints = unionBy(target.endpoint, incoming.endpoint, (r: Reference) => r.reference ?? JSON.stringify(r));
  if (endpoints.length > 0) target.endpoint = endpoints;
  return added;
}

function unionBy<T>(a: readonly T[] | undefined, b: readonly T[] | undefined, key: (item: T) => string): T[] {
  const out = (a ?? []).map((x) => structuredClone(x));
  const seen = new Set(out.map(key));
  for (const item of b ?? []) {
    const k = key(item);
    if (!seen.has(k)) {
      seen.add(k);
      out.push(structuredClone(item));
    }
  }
  return out;
}

function codingKey(c: Coding): string {
  return `${c.system ?? ''}|${c.code ?? ''}`;
}

function identifierKey(i: Identifier): string {
  const type = i.type?.coding?.map(codingKey).join(',') ?? '';
  return `${i.system ?? ''}|${type}|${i.value ?? ''}`;
}
