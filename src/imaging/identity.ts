/**
 * Does a DICOM file belong to the case's child? Patient name, birth date and (when the case knows some)
 * patient ID in the file are compared with the case patient. A doubt never drops a file: it flags the
 * study for a case manager, who knows that a CD may carry a sibling's scan or a nickname.
 *
 * Name comparison is case-insensitive and accent-folded (NFKD, combining marks removed), ignores
 * punctuation (hyphens and apostrophes become spaces), accepts a family
 * name that is a word-subset of the other (`Garcia` / `Garcia Lopez`) and a given name whose first word
 * is one of the other's given names.
 *
 * @see https://dicom.nema.org/medical/dicom/current/output/html/part05.html#sect_6.2.1 (PN)
 * @packageDocumentation
 */
import type { DicomHeader } from './dicom-header';
import { dicomDateToFhir, parsePersonName } from './dicom-values';

/** What the case knows about its patient. */
export interface CasePatient {
  readonly family: string;
  readonly given: readonly string[];
  /** FHIR date `YYYY-MM-DD`. */
  readonly birthDate?: string;
  /** Patient ids (MRNs) known for the child; the file's Patient ID is checked only when some are given. */
  readonly identifiers?: readonly string[];
  /** FHIR administrative gender from the intake; checked against a file's Patient's Sex `M` or `F`. */
  readonly sex?: string;
}

/** One reason for review. Values are PHI: show them to the case manager, never log them. */
export interface IdentityFlag {
  readonly field: 'name' | 'birthDate' | 'patientId' | 'sex';
  readonly problem: 'mismatch' | 'missing' | 'inconsistent';
  readonly inFile?: string;
  readonly expected?: string;
}

export interface IdentityCheck {
  /** True only when nothing needs review. */
  readonly matches: boolean;
  /** Short reasons without patient data (safe for logs and job results). */
  readonly mismatches: string[];
  readonly flags: IdentityFlag[];
}

/** The patient fields of a header. */
export type PatientFields = Pick<DicomHeader, 'patientName' | 'patientId' | 'patientBirthDate' | 'patientSex'>;

/** DICOM Patient's Sex (0010,0040) `M` / `F` as FHIR administrative gender; `O` and empty say nothing to compare. */
const DICOM_SEX: Readonly<Record<string, string>> = { M: 'male', F: 'female' };

/** Compares the patient in one DICOM header with the case patient. */
export function checkIdentity(header: PatientFields, casePatient: CasePatient): IdentityCheck {
  const flags: IdentityFlag[] = [];
  const expectedName = `${casePatient.family}^${casePatient.given.join(' ')}`;
  if (!header.patientName) {
    flags.push({ field: 'name', problem: 'missing', expected: expectedName });
  } else if (!namesMatch(header.patientName, casePatient)) {
    flags.push({ field: 'name', problem: 'mismatch', inFile: header.patientName, expected: expectedName });
  }
  if (casePatient.birthDate) {
    const inFile = dicomDateToFhir(header.patientBirthDate);
    if (!inFile) {
      flags.push({ field: 'birthDate', problem: 'missing', expected: casePatient.birthDate, ...(header.patientBirthDate ? { inFile: header.patientBirthDate } : {}) });
    } else if (inFile !== casePatient.birthDate) {
      flags.push({ field: 'birthDate', problem: 'mismatch', inFile, expected: casePatient.birthDate });
    }
  }
  const ids = casePatient.identifiers ?? [];
  if (ids.length > 0) {
    if (!header.patientId) flags.push({ field: 'patientId', problem: 'missing' });
    else if (!ids.some((id) => id.trim() === header.patientId)) flags.push({ field: 'patientId', problem: 'mismatch', inFile: header.patientId });
  }
  const sexInFile = DICOM_SEX[header.patientSex?.trim().toUpperCase() ?? ''];
  if (sexInFile && (casePatient.sex === 'male' || casePatient.sex === 'female') && sexInFile !== casePatient.sex) {
    flags.push({ field: 'sex', problem: 'mismatch', inFile: header.patientSex?.trim() ?? '', expected: casePatient.sex });
  }
  return { matches: flags.length === 0, mismatches: flags.map(describeFlag), flags };
}

/** A log-safe sentence for a flag. */
export function describeFlag(flag: IdentityFlag): string {
  const what = { name: 'patient name', birthDate: 'birth date', patientId: 'patient ID', sex: "patient's sex" }[flag.field];
  switch (flag.problem) {
    case 'missing':
      return `${what} missing in the file`;
    case 'mismatch':
      return `${what} differs from the case patient`;
    case 'inconsistent':
      return `${what} differs between files of the same study`;
  }
}

/** Lower case, accents folded, punctuation to spaces, spaces collapsed. */
export function foldName(value: string): string {
  return value
    .normalize('NFKD')
    .replace(/\p{M}+/gu, '')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
}

function words(value: string): string[] {
  const folded = foldName(value);
  return folded === '' ? [] : folded.split(' ');
}

/**
 * Whether any component group of the PN value (alphabetic, ideographic, phonetic: PS3.5 §6.2.1)
 * names the case's child: `Yamada^Tarou=山田^太郎` is 山田 太郎 as the intake writes it.
 */
function namesMatch(pn: string, patient: CasePatient): boolean {
  return pn.split('=').some((group) => groupMatches(group, patient));
}

function groupMatches(group: string, patient: CasePatient): boolean {
  const inFile = parsePersonName(group);
  const fileFamily = words(inFile.family);
  const caseFamily = words(patient.family);
  if (fileFamily.length === 0 || caseFamily.length === 0) return false;
  const familyOk = isSubset(fileFamily, caseFamily) || isSubset(caseFamily, fileFamily);
  const fileGiven = inFile.given.flatMap(words);
  const caseGiven = patient.given.flatMap(words);
  if (fileGiven.length === 0 || caseGiven.length === 0) return false;
  const givenOk = caseGiven.includes(fileGiven[0] ?? '') || fileGiven.includes(caseGiven[0] ?? '');
  return familyOk && givenOk;
}

function isSubset(a: readonly string[], b: readonly string[]): boolean {
  return a.every((w) => b.includes(w));
}
