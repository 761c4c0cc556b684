/**
 * DICOM headers of uploaded files to FHIR R4 ImagingStudy resources: one per Study Instance UID, series
 * by Series Instance UID, instances by SOP Instance UID.
 *
 * Deterministic: studies sorted by UID, series and instances by number then UID, ids are UUID v5 of the
 * study UID (optionally scoped, e.g. by case id), and a SOP instance uploaded twice is listed once;
 * two different files with one SOP Instance UID are both listed, the study tagged
 * `sop-instance-uid-conflict` for review ({@link conflictingSopInstanceUids}). A study with a file that
 * is also a PDF is tagged `polyglot` (and `active-content` when the PDF holds some).
 *
 * @see https://hl7.org/fhir/R4/imagingstudy.html
 * @see https://hl7.org/fhir/R4/imagingstudy-mappings.html#dicom (DICOM mapping)
 * @packageDocumentation
 */
import type { Coding, Extension, ImagingStudy, ImagingStudySeries, ImagingStudySeriesInstance } from 'fhir/r4';
import { uuidV5 } from '../cases/fhir-ids';
import { EXTENSION_BASE, FAMILY_UPLOAD_TAG, uploadFlagTag, type UploadFlagCode } from '../uploads/origin';
import { bodySiteCoding } from './body-part';
import type { DicomHeader } from './dicom-header';
import { dicomDateTimeToFhir } from './dicom-values';
import { type CasePatient, checkIdentity, describeFlag, foldName, type IdentityFlag } from './identity';

/** DICOM Controlled Terminology (PS3.16), the code system of modalities. */
export const DICOM_DCM_SYSTEM = 'http://dicom.nema.org/resources/ontology/DCM';
/** Identifier system of DICOM UIDs (values are `urn:oid:<uid>`). */
export const DICOM_UID_SYSTEM = 'urn:dicom:uid';
/** `Identifier.type` of an accession number. */
export const ACCESSION_TYPE: Readonly<Coding> = Object.freeze({ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'ACSN' });
/** Number of Frames (0028,0008) of a multi-frame instance (R4 `instance` has no element for it). */
export const NUMBER_OF_FRAMES_EXTENSION = `${EXTENSION_BASE}/dicom-number-of-frames`;
/** The blob store key (SHA-256 hex) of the uploaded file holding an instance. */
export const UPLOAD_BLOB_EXTENSION = `${EXTENSION_BASE}/upload-blob-sha256`;
/** Namespace of ImagingStudy ids made from uploads (random, fixed forever). */
export const IMAGING_STUDY_NAMESPACE = '9c0e6f1a-3b2d-4c8e-a5f7-1d6b4e2a9c37';

const MODALITY_DISPLAY: Readonly<Record<string, string>> = {
  CR: 'Computed Radiography',
  CT: 'Computed Tomography',
  DX: 'Digital Radiography',
  ES: 'Endoscopy',
  MG: 'Mammography',
  MR: 'Magnetic Resonance',
  NM: 'Nuclear Medicine',
  OT: 'Other',
  PT: 'Positron emission tomography',
  RF: 'Radio Fluoroscopy',
  SR: 'SR Document',
  US: 'Ultrasound',
  XA: 'X-Ray Angiography',
};

/** One parsed, stored file. */
export interface DicomInstanceInput {
  readonly header: DicomHeader;
  readonly blobSha256: string;
  readonly fileName: string;
  /**
   * Review flags of the file itself (a DICOM/PDF polyglot: `polyglot`, and `active-content` when its PDF
   * inspection found some): tags of the study it is listed in.
   */
  readonly flags?: readonly UploadFlagCode[];
}

/** The order of the files' own flags among a study's tags. */
const FILE_FLAG_ORDER: readonly UploadFlagCode[] = ['polyglot', 'active-content'];

export interface BuildImagingStudiesOptions {
  /** `subject` of every study, e.g. `Patient/<id>` or `urn:uuid:<id>`. */
  readonly patientReference: string;
  /** Mixed into the ids (e.g. the case id) so the same study in two cases gets two ids. */
  readonly idScope?: string;
  /** When given, studies whose patient differs are tagged `identity-mismatch` (see {@link reviewStudyIdentities}). */
  readonly casePatient?: CasePatient;
}

/** The id of the ImagingStudy made from uploads of a study. */
export function imagingStudyId(studyInstanceUid: string, idScope?: string): string {
  return uuidV5(idScope ? `${idScope}/${studyInstanceUid}` : studyInstanceUid, IMAGING_STUDY_NAMESPACE);
}

/** `urn:oid:<uid>` */
export function uidUrn(uid: string): string {
  return `urn:oid:${uid}`;
}

export function modalityCoding(modality: string | undefined): Coding {
  const code = modality?.trim().toUpperCase() || 'OT';
  const display = MODALITY_DISPLAY[code];
  return display ? { system: DICOM_DCM_SYSTEM, code, display } : { system: DICOM_DCM_SYSTEM, code };
}

type StudyGroup = Map<string, Map<string, DicomInstanceInput>>;

/** Why a file is flagged when its SOP Instance UID is another file's too, with other content. */
export const SOP_INSTANCE_UID_CONFLICT_REASON =
  'SOP Instance UID shared by different content: another uploaded file carries the same SOP Instance UID with other bytes (or in another series or study); both are kept, check which is right before use';

/**
 * The SOP Instance UIDs that name more than one content: two different files claiming to be one
 * instance — an edited copy, a writer reusing UIDs — in the same transfer syntax, or the UID in two
 * series or studies. Neither may silently replace the other: both are listed and flagged. The same
 * bytes uploaded twice are one file; the same instance in another transfer syntax of the same series
 * (a lossless transcoding keeps the SOP Instance UID, PS3.5 §8.2) is the same instance, listed once.
 */
export function conflictingSopInstanceUids(instances: readonly DicomInstanceInput[]): Set<string> {
  const places = new Map<string, Set<string>>();
  const contents = new Map<string, Set<string>>();
  for (const { header, blobSha256 } of instances) {
    const uid = header.sopInstanceUid;
    let place = places.get(uid);
    if (!place) places.set(uid, (place = new Set()));
    place.add(JSON.stringify([header.studyInstanceUid, header.seriesInstanceUid]));
    const key = JSON.stringify([uid, header.transferSyntaxUid ?? '']);
    let set = contents.get(key);
    if (!set) contents.set(key, (set = new Set()));
    set.add(blobSha256);
  }
  const conflicts = new Set([...places].filter(([, set]) => set.size > 1).map(([uid]) => uid));
  for (const [key, set] of contents) {
    if (set.size > 1) conflicts.add((JSON.parse(key) as [string, string])[0]);
  }
  return conflicts;
}

/**
 * Groups instances: study UID → series UID → instance. The same content uploaded twice is listed
 * once (first by blob hash); different contents under one SOP Instance UID are all listed (keyed by
 * UID and hash), never one dropped for the other.
 */
function group(instances: readonly DicomInstanceInput[], conflicts: ReadonlySet<string>): Map<string, StudyGroup> {
  const studies = new Map<string, StudyGroup>();
  const ordered = [...instances].sort((a, b) => compare(a.blobSha256, b.blobSha256));
  for (const item of ordered) {
    const { studyInstanceUid, seriesInstanceUid, sopInstanceUid } = item.header;
    let study = studies.get(studyInstanceUid);
    if (!study) studies.set(studyInstanceUid, (study = new Map()));
    let series = study.get(seriesInstanceUid);
    if (!series) study.set(seriesInstanceUid, (series = new Map()));
    const key = conflicts.has(sopInstanceUid) ? `${sopInstanceUid}\u0000${item.blobSha256}` : sopInstanceUid;
    if (!series.has(key)) series.set(key, item);
  }
  return studies;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function byNumberThenUid(a: { n?: number; uid: string }, b: { n?: number; uid: string }): number {
  const an = a.n ?? Number.POSITIVE_INFINITY;
  const bn = b.n ?? Number.POSITIVE_INFINITY;
  return an !== bn ? (an < bn ? -1 : 1) : compare(a.uid, b.uid);
}

function first<T>(items: readonly DicomInstanceInput[], pick: (h: DicomHeader) => T | undefined): T | undefined {
  for (const item of items) {
    const value = pick(item.header);
    if (value !== undefined) return value;
  }
  return undefined;
}

/** Builds one ImagingStudy per Study Instance UID. */
export function buildImagingStudies(instances: readonly DicomInstanceInput[], options: BuildImagingStudiesOptions): ImagingStudy[] {
  const reviews = options.casePatient ? new Map(reviewStudyIdentities(instances, options.casePatient, options.idScope).map((r) => [r.studyInstanceUid, r])) : undefined;
  const studies: ImagingStudy[] = [];
  const conflicts = conflictingSopInstanceUids(instances);
  const grouped = group(instances, conflicts);
  // Every file of a study counts (a polyglot listed once under its SOP Instance UID, or beside a plain copy).
  const fileFlagsByStudy = new Map<string, Set<UploadFlagCode>>();
  for (const instance of instances) {
    if (!instance.flags?.length) continue;
    const flags = fileFlagsByStudy.get(instance.header.studyInstanceUid) ?? new Set<UploadFlagCode>();
    for (const flag of instance.flags) flags.add(flag);
    fileFlagsByStudy.set(instance.header.studyInstanceUid, flags);
  }
  for (const studyUid of [...grouped.keys()].sort(compare)) {
    const seriesMap = grouped.get(studyUid) ?? new Map<string, Map<string, DicomInstanceInput>>();
    const series = [...seriesMap.entries()].map(([uid, members]) => buildSeries(uid, [...members.values()]));
    series.sort((a, b) => byNumberThenUid({ n: a.number, uid: a.uid }, { n: b.number, uid: b.uid }));
    const all = [...seriesMap.values()].flatMap((m) => [...m.values()]).sort((a, b) => compare(a.header.sopInstanceUid, b.header.sopInstanceUid));
    const accession = first(all, (h) => h.accessionNumber);
    const started = first(all, (h) => dicomDateTimeToFhir(h.studyDate, h.studyTime, h.timezoneOffsetFromUtc));
    const description = first(all, (h) => h.studyDescription);
    const modalities = [...new Set(series.map((s) => s.modality.code ?? 'OT'))].sort(compare).map(modalityCoding);
    const review = reviews?.get(studyUid);
    const tags: Coding[] = [{ ...FAMILY_UPLOAD_TAG }];
    if (review && !review.matches) tags.push(uploadFlagTag('identity-mismatch'));
    if (all.some((i) => conflicts.has(i.header.sopInstanceUid))) tags.push(uploadFlagTag('sop-instance-uid-conflict'));
    const fileFlags = fileFlagsByStudy.get(studyUid);
    for (const code of FILE_FLAG_ORDER) if (fileFlags?.has(code)) tags.push(uploadFlagTag(code));
    studies.push({
      resourceType: 'ImagingStudy',
      id: imagingStudyId(studyUid, options.idScope),
      meta: { tag: tags },
      identifier: [
        { system: DICOM_UID_SYSTEM, value: uidUrn(studyUid) },
        ...(accession ? [{ type: { coding: [{ ...ACCESSION_TYPE }] }, value: accession }] : []),
      ],
      status: 'available',
      modality: modalities,
      subject: { reference: options.patientReference },
      ...(started ? { started } : {}),
      numberOfSeries: series.length,
      numberOfInstances: series.reduce((n, s) => n + (s.numberOfInstances ?? 0), 0),
      ...(description ? { description } : {}),
      series,
    });
  }
  return studies;
}

function buildSeries(uid: string, members: DicomInstanceInput[]): ImagingStudySeries {
  members.sort((a, b) => byNumberThenUid({ n: a.header.instanceNumber, uid: a.header.sopInstanceUid }, { n: b.header.instanceNumber, uid: b.header.sopInstanceUid }));
  const number = first(members, (h) => h.seriesNumber);
  const description = first(members, (h) => h.seriesDescription);
  const bodyPart = first(members, (h) => h.bodyPartExamined);
  return {
    uid,
    ...(number !== undefined ? { number } : {}),
    modality: modalityCoding(first(members, (h) => h.modality)),
    ...(description ? { description } : {}),
    numberOfInstances: members.length,
    ...(bodyPart ? { bodySite: bodySiteCoding(bodyPart) } : {}),
    instance: members.map(buildInstance),
  };
}

function buildInstance(item: DicomInstanceInput): ImagingStudySeriesInstance {
  const h = item.header;
  const extension: Extension[] = [];
  if (h.numberOfFrames !== undefined && h.numberOfFrames >= 0) extension.push({ url: NUMBER_OF_FRAMES_EXTENSION, valueUnsignedInt: h.numberOfFrames });
  extension.push({ url: UPLOAD_BLOB_EXTENSION, valueString: item.blobSha256 });
  return {
    extension,
    uid: h.sopInstanceUid,
    sopClass: { system: 'urn:ietf:rfc:3986', code: uidUrn(h.sopClassUid) },
    ...(h.instanceNumber !== undefined ? { number: h.instanceNumber } : {}),
  };
}

/** The identity verdict on one uploaded study. */
export interface StudyIdentityReview {
  readonly studyInstanceUid: string;
  readonly imagingStudyId: string;
  readonly matches: boolean;
  /** Log-safe reasons. */
  readonly mismatches: string[];
  /** Structured flags with the values found (PHI). */
  readonly flags: IdentityFlag[];
}

/**
 * Checks every distinct patient (name, ID, birth date) found in each study against the case patient,
 * and flags studies whose files disagree among themselves. Sorted by study UID.
 */
export function reviewStudyIdentities(
  instances: readonly DicomInstanceInput[],
  casePatient: CasePatient,
  idScope?: string,
): StudyIdentityReview[] {
  const byStudy = new Map<string, Map<string, DicomHeader>>();
  for (const { header } of instances) {
    const key = JSON.stringify([header.patientName ?? null, header.patientId ?? null, header.patientBirthDate ?? null]);
    let patients = byStudy.get(header.studyInstanceUid);
    if (!patients) byStudy.set(header.studyInstanceUid, (patients = new Map()));
    if (!patients.has(key)) patients.set(key, header);
  }
  const reviews: StudyIdentityReview[] = [];
  for (const studyUid of [...byStudy.keys()].sort(compare)) {
    const patients = [...(byStudy.get(studyUid)?.entries() ?? [])].sort(([a], [b]) => compare(a, b)).map(([, h]) => h);
    const flags: IdentityFlag[] = [];
    const seen = new Set<string>();
    for (const header of patients) {
      for (const flag of checkIdentity(header, casePatient).flags) {
        const key = JSON.stringify(flag);
        if (!seen.has(key)) {
          seen.add(key);
          flags.push(flag);
        }
      }
    }
    if (patients.length > 1) {
      for (const field of ['patientName', 'patientId', 'patientBirthDate'] as const) {
        if (new Set(patients.map((h) => sameness(field, h[field]))).size > 1) {
          flags.push({ field: field === 'patientName' ? 'name' : field === 'patientId' ? 'patientId' : 'birthDate', problem: 'inconsistent' });
        }
      }
    }
    reviews.push({
      studyInstanceUid: studyUid,
      imagingStudyId: imagingStudyId(studyUid, idScope),
      matches: flags.length === 0,
      mismatches: [...new Set(flags.map(describeFlag))],
      flags,
    });
  }
  return reviews;
}

/**
 * What two files of one study must share in a patient field to be the same patient: a name up to
 * case, accents and the empty trailing components DICOM lets writers omit (`Doe^Jane^^^` is
 * `DOE^JANE`, PS3.5 §6.2.1); other fields as written (trimmed).
 */
function sameness(field: 'patientName' | 'patientId' | 'patientBirthDate', value: string | undefined): string {
  const v = (value ?? '').trim();
  return field === 'patientName' ? v.split('=').map(foldName).join('=').replace(/=+$/, '') : v;
}
