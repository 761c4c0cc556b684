/**
 * Does a DICOM file belong to the case's child? Patient name, birth date and (when the case knows some)
 * patient ID in the file are compared with the case patient. A doubt never drops a file: it flags the
 * study for a case manager, who knows that a CD may carry a sibling's scan or a nickname.
 *
 * Name comparison is case-insensitive and accent-folded (NFKD, combining marks removed), ignores
 * punctuation (as word breaks, and removed: `O'Brien` = `OBRIEN`), accepts a family name that is a
 * word-subset of the other (`Garcia` / `Garcia Lopez`), and requires the file's first given name to be
 * the case's first given name: a file whose first given name is only one of the case's later (middle)
 * names is flagged `middle-name-only` (a sibling often carries the child's middle name as a first
 * name: case `Zinnia Quillon`, file `Marrowvale^Quillon`). The alphabetic component group decides when
 * it is not empty.
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
  /** `middle-name-only`: the name matches except that the file's first given name is a later given name of the case patient. */
  readonly problem: 'mismatch' | 'missing' | 'inconsistent' | 'middle-name-only';
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
  } else {
    const name = nameVerdict(header.patientName, casePatient);
    if (name !== 'match') flags.push({ field: 'name', problem: name, inFile: header.patientName, expected: expectedName });
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
    case 'middle-name-only':
      return `${what}: the given name in the file matches only a middle name of the case patient (a sibling?)`;
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

/** Letters of the scripts DICOM writes in the ideographic and phonetic groups, never in the alphabetic one. */
const IDEOGRAPHIC_OR_PHONETIC = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]/u;

/**
 * Whether the PN value names the case's child. The alphabetic component group is the name: when it
 * is not empty, it must match (`Other^Kid=Garcia^Maria` is another child). The ideographic and
 * phonetic groups (PS3.5 §6.2.1.2) count only when the alphabetic group is empty, or when the intake
 * writes the name in their scripts (`Yamada^Tarou=山田^太郎` is 山田 太郎 as the intake writes it).
 * @see https://dicom.nema.org/medical/dicom/current/output/chtml/part05/sect_6.2.html#sect_6.2.1.2
 */
function nameVerdict(pn: string, patient: CasePatient): NameVerdict {
  const [alphabetic = '', ...others] = pn.split('=');
  const caseInOtherScript = IDEOGRAPHIC_OR_PHONETIC.test(`${patient.family}${patient.given.join('')}`);
  const groups = foldName(alphabetic) !== '' && !caseInOtherScript ? [alphabetic] : [alphabetic, ...others];
  const verdicts = groups.map((group) => groupVerdict(group, patient));
  return verdicts.includes('match') ? 'match' : verdicts.includes('middle-name-only') ? 'middle-name-only' : 'mismatch';
}

/** How a PN value compares with the case patient's name. */
type NameVerdict = 'match' | 'middle-name-only' | 'mismatch';

/** Lower case, accents folded, punctuation and spaces removed: `O'Brien` = `OBRIEN`, `Mary-Kate` = `MARYKATE`. */
function compact(value: string): string {
  return foldName(value).replace(/ /g, '');
}

function groupVerdict(group: string, patient: CasePatient): NameVerdict {
  const inFile = parsePersonName(group);
  return familyMatches(inFile.family, patient.family) ? givenVerdict(inFile.given, patient.given) : 'mismatch';
}

/** Either family name's words are a subset of the other's (`Garcia` / `Garcia Lopez`), or both are the same without punctuation. */
function familyMatches(inFile: string, expected: string): boolean {
  const fileFamily = words(inFile);
  const caseFamily = words(expected);
  if (fileFamily.length === 0 || caseFamily.length === 0) return false;
  return isSubset(fileFamily, caseFamily) || isSubset(caseFamily, fileFamily) || compact(inFile) === compact(expected);
}

/**
 * Whether the file's FIRST given name is the case's FIRST given name: a sibling shares the family
 * name and often a second given name (`Garcia^Ana Maria` is not Maria), and may carry the child's
 * middle name as a first name (case `Zinnia Quillon`, file `Marrowvale^Quillon`: `middle-name-only`,
 * flagged for review). The case's given names are words over all of `given` (`['Zinnia Quillon']` and
 * `['Zinnia', 'Quillon']` alike); the file's are its given and middle components (`Zinnia Quillon` or
 * `Zinnia^Quillon`), of which only the first is compared. Compared as words (`Mary` is one of
 * `Mary-Kate`) and without punctuation (`MARYKATE` is `Mary-Kate`).
 */
function givenVerdict(inFile: readonly string[], expected: readonly string[]): NameVerdict {
  const first = inFile[0];
  const caseNames = expected.flatMap((g) => g.split(/\s+/)).filter((g) => foldName(g) !== '');
  if (first === undefined || foldName(first) === '' || caseNames.length === 0) return 'mismatch';
  const firstWord = words(first)[0] ?? '';
  const same = (name: string): boolean => compact(name) === compact(first) || words(name).includes(firstWord);
  const [caseFirst = '', ...caseLater] = caseNames;
  if (same(caseFirst)) return 'match';
  return caseLater.some(same) ? 'middle-name-only' : 'mismatch';
}

function isSubset(a: readonly string[], b: readonly string[]): boolean {
  return a.every((w) => b.includes(w));
}
